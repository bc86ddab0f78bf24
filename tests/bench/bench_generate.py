"""Generation benchmark: tokens/s of strata's KV-cache decoding (`strata generate`,
train/generate.py) against transformers' `generate` on the exported model, same prompt,
greedy, in the same process, taken in turn.

    python tests/bench/bench_generate.py [--preset gpt2-small] [--vocab 32000] [--prompt 32] [--new 128] [--repeat 3]

The model: a GPT of the preset's shape (default gpt2-small, 124M at a 32k vocabulary,
random weights: speed does not depend on what they learned), exported exactly as `strata
export` does (train/hf_models.py -> GPT2LMHeadModel, safetensors) and loaded back with
AutoModelForCausalLM. Both decode greedily from the same prompt ids with no EOS stop; the
benchmark checks they produce the same tokens. tokens/s = new tokens / wall time of the
whole call (prompt included), median of --repeat runs, range beside it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch


def main(argv: list[str] | None = None) -> int:
    import transformers

    from strata.train.generate import generate_ids
    from strata.train.hf_models import to_hf
    from strata.train.presets import model_for

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gpt2-small")
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    parser.add_argument("--new", type=int, default=128, help="new tokens")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = model_for("clm", args.preset, args.vocab, 1024).eval()
    prompt = torch.randint(5, args.vocab, (args.prompt,)).tolist()
    with tempfile.TemporaryDirectory(prefix="strata-bench-generate-") as folder:
        to_hf(model, {"pad": 0, "unk": 1, "bos": 2, "eos": 3}).save_pretrained(folder, safe_serialization=True)
        theirs = transformers.AutoModelForCausalLM.from_pretrained(folder).float().eval()

    def strata_run() -> tuple[float, list[int]]:
        start = time.perf_counter()
        new = generate_ids(model, prompt, args.new, temperature=0)
        return time.perf_counter() - start, new

    def transformers_run() -> tuple[float, list[int]]:
        start = time.perf_counter()
        with torch.no_grad():
            out = theirs.generate(torch.tensor([prompt]), max_new_tokens=args.new, min_new_tokens=args.new,
                                  do_sample=False, use_cache=True, pad_token_id=0, eos_token_id=None)
        return time.perf_counter() - start, out[0, len(prompt):].tolist()

    rates: dict[str, list[float]] = {"strata": [], "transformers": []}
    outputs = {}
    strata_run(), transformers_run()  # warm-up: allocator, kernels, lazy imports
    for _ in range(args.repeat):  # in turn, so drifting machine load hits both alike
        for name, run in (("strata", strata_run), ("transformers", transformers_run)):
            seconds, new = run()
            rates[name].append(len(new) / seconds)
            outputs[name] = new
    same = outputs["strata"] == outputs["transformers"]
    threads = torch.get_num_threads()
    for name, values in rates.items():
        print(f"generate {name:<12} {args.preset} vocab={args.vocab} prompt={args.prompt} new={args.new} greedy  "
              f"tokens/s={statistics.median(values):,.1f}  (range {min(values):,.1f}-{max(values):,.1f}, "
              f"{args.repeat} runs, {threads} threads)")
    ratio = statistics.median(rates["strata"]) / statistics.median(rates["transformers"])
    print(f"ratio    strata / transformers = {ratio:.3f}  (target >= 1.0); same tokens: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
