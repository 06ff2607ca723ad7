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


# Every built-in judge's fingerprint digest, computed before the definitions were last rewritten. Digests are
# cache keys: a stored judgment is found again only under the same digest, so a change here must be deliberate
# (a new model, template or decoding), never the side effect of tidying the table. A new built-in judge adds a row.
BUILTIN_DIGESTS = {
    "smollm2-logprob": "50e35e58591006a947a2c1c663e54590816550a957929d992a1922f8c34aeb63",
    "smollm2-logprob-server": "3a8d6b405426bded435784cf8adf562a6293b261c90e7449233f518f8d205007",
    "smollm2-graded-server": "15e417aaaa944740c2fed564055a0b52d1c5c7130ff36fd1ed225b4aae04dc7f",
    "weighted_alpaca_eval_gpt4_turbo": "a32a87402c173d6b1328a0da6c439d64757753749bece0087f00d8174f6a6873",
    "gpt-4o-mini-logprob": "a722f7c476b2fe2ac25d2a7ded61d9460a3bd5a9179773b42608df1a295b7944",
    "gpt-4o-mini-graded": "253bf519bea0180136b5c1e4081a86cb0a3771b1eb03f29924bd6c3f4a945e08",
    "gpt-4o-mini-score": "5f57502e210feb907e3fb4633e9cb9a3ba11ab5727ba6dfb56fae61bb40fb9c7",
    "gpt-4o-mini-reference": "8c6cdbba9095e213e318c00a9ff1f0abbd55ed1f80f3a0698e4065795bd4cde0",
    "claude-graded": "d3b9f568da475b3511334f24c2b03ff3b31a824f78227251a1365e037fa40847",
    "smollm2-critique-server": "3a25617b93984b8b4d786282fe81f80eaae0e810804136e6c2da996944eb8db3",
    "gpt-4o-mini-critique": "513e75c61c05df3eaa443720f50a7808a4a9bf263baadd5e923b14036dec75d3",
    "gpt-4o-mini-response-score": "dbb50d149dfe6aa21e73b1c1491775c44a8c0c3c42310c323c591b8331ca1fdd",
    "smollm2-rule-check-server": "6de99c500d47963b2d08765a988e6c637b5d99b76583544fc9360ce91c71e3e6",
    "gpt-4o-mini-rule-check": "566ece7961a0426b75cd46ec124295a8b73d4dd6ddef1823065ad2765ecb78e2",
    "smollm2-reference-grade-server": "691aa1b953e79df789c8ee33548371b37c540f95fdeb6947cc3ffd2b7875d66d",
    "gpt-4o-mini-reference-grade": "5dbaa9ea0ed81d253a56e650a06ee0a394cd2f1a353537adf8a47cb4ccb0dc91",
    "longer-wins": "0ba88ee9111df651bf7a3bc53c250123c6e160f5445f97d7ffa55921161bea9a",
}


def test_builtin_judge_digests_are_pinned(alpacaeval, smollm2_gguf):
    """Each built-in judge, built as `get_judge` builds it, keeps the digest it had (the SmolLM2 ones digest the
    shipped GGUF's bytes; the official judge is built from AlpacaEval's template file)."""
    assert list(BUILTIN_JUDGES) == list(BUILTIN_DIGESTS)
    template = str(alpacaeval / "judge_config" / "alpaca_eval_clf.txt")
    for name in BUILTIN_JUDGES:
        judge = get_judge(name, template=template) if name == "weighted_alpaca_eval_gpt4_turbo" else get_judge(name)
        assert judge.fingerprint.digest == BUILTIN_DIGESTS[name], name
