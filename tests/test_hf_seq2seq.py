"""Export of the encoder-decoder (as MBartForConditionalGeneration) and of ELECTRA (as
ElectraForPreTraining, its generator as ElectraForMaskedLM): transformers loads them with
the Auto classes and gives strata's logits on real text; greedy generation agrees; export
refuses what no transformers class holds exactly."""

import pytest
import torch

transformers = pytest.importorskip("transformers")  # the strata[hf] extra, installed by make setup

from strata.cli import main  # noqa: E402
from strata.train.electra import Electra, ElectraConfig  # noqa: E402
from strata.train.hf_common import ArchitectureError  # noqa: E402
from strata.train.hf_electra import discriminator_to_hf  # noqa: E402
from strata.train.hf_models import to_hf  # noqa: E402
from strata.train.load import load_model  # noqa: E402
from strata.train.model_card import differences  # noqa: E402
from strata.train.presets import build_model  # noqa: E402
from strata.train.trainer import train  # noqa: E402
from test_hf import SEQ_LEN, real_text, run_config  # noqa: E402


def _export(build, tmp_path, objective, **overrides):
    """Train `objective` a few steps on the tiny preset, export it: (strata model, DIR)."""
    run, folder = tmp_path / "run", tmp_path / "hf"
    train(run_config(build, run, objective=objective, steps=4, **overrides))
    assert main(["export", str(run), "--out", str(folder)]) == 0
    return load_model(str(run)).model, folder


def _greedy(model, source: torch.Tensor, start: int, steps: int) -> list[int]:
    """strata's encoder-decoder decoding greedily: the whole target prefix every step."""
    target = [start]
    with torch.no_grad():
        memory = model.encode(source)
        for _ in range(steps):
            target.append(int(model.decode(torch.tensor([target]), memory)[0, -1].argmax()))
    return target[1:]


@pytest.mark.parametrize("objective", ["span_corruption", "ul2"])
def test_transformers_loads_the_encoder_decoder_export_with_strata_logits(objective_build, tmp_path, objective):
    out, manifest = objective_build
    model, folder = _export(out, tmp_path, objective)
    hf = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder)
    assert type(hf).__name__ == "MBartForConditionalGeneration"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(real_text())["input_ids"]
    pad = manifest["tokenizer"]["special_ids"]["pad"]
    # a batch of two sources, the second padded at the end; the decoder reads pad + a target
    source = torch.tensor([ids[:SEQ_LEN], ids[SEQ_LEN:2 * SEQ_LEN - 20] + [pad] * 20])
    segments = torch.zeros_like(source)
    segments[1, -20:] = -1  # strata's padding segment (objectives/examples.py)
    decoder_idx = torch.tensor([[pad] + ids[2 * SEQ_LEN:3 * SEQ_LEN - 1]] * 2)
    with torch.no_grad():
        theirs = hf(input_ids=source, attention_mask=(segments != -1).long(), decoder_input_ids=decoder_idx).logits
        ours = model(source, decoder_idx, None, segments)[0]
    assert theirs.shape == ours.shape == (2, SEQ_LEN, manifest["tokenizer"]["vocab_size"])
    assert torch.allclose(theirs, ours, atol=1e-4, rtol=0)
    # greedy generation from the export: its decoder starts from pad, as strata's teacher forcing
    generated = hf.generate(source[:1], max_new_tokens=12, do_sample=False, eos_token_id=None)
    assert generated[0, 0] == pad and generated.shape[1] == 13
    assert generated[0, 1:].tolist() == _greedy(model, source[:1], pad, 12)
    card = (folder / "README.md").read_text()
    assert "AutoModelForSeq2SeqLM" in card and "decoder_start_token_id" in card


def test_transformers_loads_the_electra_export_with_strata_logits(objective_build, tmp_path):
    out, manifest = objective_build
    model, folder = _export(out, tmp_path, "electra")
    hf = transformers.AutoModelForPreTraining.from_pretrained(folder)
    assert type(hf).__name__ == "ElectraForPreTraining"
    generator = transformers.AutoModelForMaskedLM.from_pretrained(folder, subfolder="generator")
    assert type(generator).__name__ == "ElectraForMaskedLM"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([tokenizer(real_text())["input_ids"][:SEQ_LEN]])
    masked = ids.clone()
    masked[0, 5:60:7] = manifest["tokenizer"]["special_ids"]["mask"]
    with torch.no_grad():
        ours = model.discriminator_head(model.discriminator(ids)).squeeze(-1)
        assert torch.allclose(hf(input_ids=ids).logits, ours, atol=1e-4, rtol=0)
        assert torch.allclose(generator(input_ids=masked).logits, model.generator_logits(masked, None), atol=1e-4, rtol=0)
    card = (folder / "README.md").read_text()
    assert "AutoModelForPreTraining" in card and 'subfolder="generator"' in card and "replaced token detection" in card


def test_export_refuses_models_no_transformers_class_holds():
    specials = {"pad": 0, "unk": 1, "bos": 2, "eos": 3, "mask": 4}
    with pytest.raises(ArchitectureError, match="XLNet: transformers has no class"):
        to_hf(build_model("xlnet", "tiny", 64, 32), specials)
    with pytest.raises(ArchitectureError, match="pre-LN blocks"):
        discriminator_to_hf(Electra(ElectraConfig(vocab_size=64, seq_len=32, n_layer=1, n_head=2, n_embd=32,
                                                  post_ln=False)), specials)
    with pytest.raises(ArchitectureError, match="epsilon 1e-5"):
        to_hf(build_model("t5", "t5-tiny", 64, 32, norm_eps=1e-6), specials)


def test_the_model_card_says_where_transformers_differs():
    prefix = " ".join(differences({"objective": "prefix_lm", "config": {"doc_mask": True}}, "GPT2LMHeadModel", False))
    assert "prefix mask" in prefix and "attends causally everywhere" in prefix and "one document per sequence" in prefix
    plain = " ".join(differences({"objective": "clm", "config": {}}, "GPT2LMHeadModel", False))
    assert "prefix" not in plain and "without document-boundary masking" in plain
    electra = " ".join(differences({"objective": "electra", "config": {}}, "ElectraForPreTraining", False))
    assert "discriminator" in electra and "generator/" not in electra
