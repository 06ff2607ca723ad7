import httpx

from pasture.local_models import LlamaServer


def test_llama_server_answers_with_logprobs(llama_server: LlamaServer) -> None:
    reply = httpx.post(
        f"{llama_server.base_url}/chat/completions",
        json={
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Say yes."}],
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": 3,
            "temperature": 0,
        },
        timeout=60,
    ).json()
    top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert len(top) == 3
    assert all(t["logprob"] <= 0 for t in top)
    assert reply["usage"]["completion_tokens"] == 1
