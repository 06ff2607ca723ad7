"""Fingerprints change when any component changes and not otherwise; keys never leak."""

from __future__ import annotations

import hashlib
import re

import pytest

from pasture.errors import InputError, JudgeError
from pasture.judges import BUILTIN_JUDGES, JudgeRequest, get_judge, get_spec
from pasture.judges.definitions import load_spec
from pasture.records import OFFICIAL_JUDGE_ALIASES

SECRET = "sk-live-DO-NOT-LEAK-9876543210"


def test_official_judge_matches_alpacaeval_config_files(alpacaeval):
    """The official judge and the alias used to import its annotations, against AlpacaEval's own files.

    The expectation is read from ../shared (the judge's YAML config and its template), not from pasture: a
    wrong model, decoding, label order or template would make imported annotations look like this judge's."""
    yaml = pytest.importorskip("yaml")
    config_dir = alpacaeval / "judge_config"
    config = yaml.safe_load((config_dir / "weighted_alpaca_eval_gpt4_turbo.yaml").read_text(encoding="utf-8"))
    config = config["weighted_alpaca_eval_gpt4_turbo"]
    kwargs = config["completions_kwargs"]
    template_bytes = (config_dir / "alpaca_eval_clf.txt").read_bytes()
    labels = config["completion_parser_kwargs"]["denominator_tokens"]
    assert config["completion_parser_kwargs"]["numerator_token"] == labels[0]  # P(first shown) on top
    judge = get_judge("weighted_alpaca_eval_gpt4_turbo", template=str(config_dir / "alpaca_eval_clf.txt"))
    alias = OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"]
    for fp in (judge.fingerprint, alias):
        assert (fp.provider, fp.protocol) == ("openai", "pairwise_logprob")
        assert config["fn_completions"] == "openai_completions" and config["fn_completion_parser"] == "logprob_parser"
        assert fp.model == kwargs["model_name"]
        assert fp.decoding == {k: v for k, v in kwargs.items() if k != "model_name"}
        assert fp.parser == "logprob_" + "".join(labels)
        assert fp.template_digest == hashlib.sha256(template_bytes).hexdigest()
        assert fp.weights_digest is None
    assert judge.fingerprint.digest == alias.digest
    # the messages: AlpacaEval fills the file by text replacement, then splits its ChatML turns
    filled = template_bytes.decode("utf-8")
    for field, value in (("instruction", "Name a fruit."), ("output_1", "Apple."), ("output_2", "A pear.")):
        filled = filled.replace("{" + field + "}", value)
    turns = re.findall(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>", filled, flags=re.DOTALL)
    expected = tuple({"role": role, "content": body.strip()} for role, body in turns)
    assert [role for role, _ in turns] == ["system", "user"]
    assert judge.messages(JudgeRequest("Name a fruit.", "Apple.", "A pear.", shown_first=1)) == [expected]
    swapped = tuple(
        {**m, "content": m["content"].replace("Apple.", "@").replace("A pear.", "Apple.")} for m in expected
    )
    swapped = tuple({**m, "content": m["content"].replace("@", "A pear.")} for m in swapped)
    assert judge.messages(JudgeRequest("Name a fruit.", "Apple.", "A pear.", shown_first=2)) == [swapped]
    # written as 1.0 instead of 1, temperature means the same and keeps the digest
    same = get_judge("weighted_alpaca_eval_gpt4_turbo", template=str(config_dir / "alpaca_eval_clf.txt"),
                     decoding={"temperature": 1.0})  # fmt: skip
    assert same.fingerprint.digest == alias.digest


def test_official_judge_needs_its_template():
    with pytest.raises(JudgeError, match="needs a template file"):
        get_judge("weighted_alpaca_eval_gpt4_turbo")


def test_each_component_changes_the_digest(tmp_path, alpacaeval):
    base = get_judge("gpt-4o-mini-logprob")
    d0 = base.fingerprint.digest
    assert get_judge("gpt-4o-mini-logprob").fingerprint.digest == d0  # stable
    assert get_judge("gpt-4o-mini-logprob", base_url="http://127.0.0.1:1/v1").fingerprint.digest == d0  # URL: no
    assert get_judge("gpt-4o-mini-logprob", timeout_s=3).fingerprint.digest == d0  # timeout: no
    variants = {
        "model": get_judge("gpt-4o-mini-logprob", model="gpt-4o"),
        "provider": get_judge("gpt-4o-mini-logprob", provider="llama_cpp", model_path=str(_gguf(tmp_path))),
        "decoding": get_judge("gpt-4o-mini-logprob", decoding={"temperature": 0.5}),
        "parser": get_judge("gpt-4o-mini-logprob", parser={"kind": "logprob", "labels": ["A", "B"], "loose": False}),
        "protocol+parser": get_judge("gpt-4o-mini-logprob", protocol="pairwise_graded", template="pairwise_graded_v1",
                                     parser=None, decoding={"logprobs": False}),
        "weights": get_judge("gpt-4o-mini-logprob", weights_digest="0" * 64),
    }  # fmt: skip
    custom = tmp_path / "t.txt"
    custom.write_text((alpacaeval / "judge_config" / "alpaca_eval_clf.txt").read_text() + " ", encoding="utf-8")
    variants["template"] = get_judge("weighted_alpaca_eval_gpt4_turbo", template=str(custom))
    digests = {k: v.fingerprint.digest for k, v in variants.items()}
    assert d0 not in digests.values()
    assert len(set(digests.values())) == len(digests)
    assert (
        variants["template"].fingerprint.template_digest
        != OFFICIAL_JUDGE_ALIASES["weighted_alpaca_eval_gpt4_turbo"].template_digest
    )


def _gguf(tmp_path):
    p = tmp_path / "fake.gguf"
    p.write_bytes(b"GGUF not really")
    return p


def test_weights_digest_follows_the_file(tmp_path):
    p = _gguf(tmp_path)
    q = tmp_path / "other.gguf"
    q.write_bytes(b"GGUF other bytes")
    a = get_judge("smollm2-logprob", model_path=str(p), model="x").fingerprint
    b = get_judge("smollm2-logprob", model_path=str(q), model="x").fingerprint
    assert a.weights_digest != b.weights_digest and a.digest != b.digest


def test_keys_never_in_repr_or_fingerprint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    for name in ("gpt-4o-mini-logprob", "claude-graded"):
        j = get_judge(name)
        assert SECRET not in repr(j) and SECRET not in repr(j.provider)
        assert SECRET not in j.fingerprint.model_dump_json()
    j = get_judge("gpt-4o-mini-graded", api_key=SECRET)
    assert SECRET not in repr(j) and SECRET not in repr(j.provider)
    assert SECRET not in j.fingerprint.model_dump_json()


def test_toml_definition_round_trip(tmp_path):
    (tmp_path / "tpl.txt").write_text("Q {instruction}\nA {output_1}\nB {output_2}\nVerdict?", encoding="utf-8")
    f = tmp_path / "mine.toml"
    f.write_text(
        'name = "mine"\nprotocol = "pairwise_graded"\ntemplate = "tpl.txt"\n'
        '[provider]\nname = "openai"\nmodel = "qwen2.5-7b"\nbase_url = "http://127.0.0.1:8000/v1"\n'
        "[decoding]\nmax_tokens = 64\ntemperature = 0.0\n",
        encoding="utf-8",
    )
    j = get_judge(str(f))
    fp = j.fingerprint
    assert j.name == "mine" and fp.model == "qwen2.5-7b" and fp.parser == "graded_verdict"
    assert fp.decoding == {"max_tokens": 64, "temperature": 0}
    assert get_spec(f) == load_spec(f)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            'name = "x"\n[provider]\nname = "openai"\nmodel = "m"\napi_key = "sk-1"\nprotocol="pairwise_graded"',
            "API keys",
        ),
        ('protocol = "pairwise_graded"\n', "provider"),
        ('protocol = "telepathy"\n[provider]\nname = "openai"\nmodel = "m"\n', "protocol"),
        ('prompt = "x"\n[provider]\nname = "openai"\n', "unknown key"),
        ("not toml = = =", "not valid TOML"),
    ],
)
def test_bad_toml_files_are_clear_errors(tmp_path, body, problem):
    f = tmp_path / "bad.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=problem):
        get_judge(str(f))


def test_unknown_names_are_clear_errors():
    with pytest.raises(JudgeError, match="unknown judge"):
        get_judge("gpt-17")
    with pytest.raises(JudgeError, match="unknown provider"):
        get_judge("gpt-4o-mini-logprob", provider="telepathy")
    with pytest.raises(JudgeError, match="bad arguments"):
        get_judge("gpt-4o-mini-logprob", colour="red")
    assert "smollm2-logprob" in BUILTIN_JUDGES
