"""`strata export`, `strata generate` and `strata eval`: using a trained model."""

from __future__ import annotations

import argparse
import json
import sys


def _export(args: argparse.Namespace) -> int:
    from strata.train.export import export_run

    result = export_run(args.run, args.out, args.step)
    print(f"exported step {result['step']} as {result['architecture']} to {result['out']} "
          f"(config.json, model.safetensors, tokenizer.json, README.md)")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from strata.train.generate import generate_ids, prompt_ids
    from strata.train.load import load_model

    loaded = load_model(args.source, args.step)
    prompt = prompt_ids(loaded.encoder, args.prompt)
    new = generate_ids(loaded.model, prompt, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                       top_p=args.top_p, seed=args.seed, eos=loaded.encoder.special_ids["eos"])
    eos = loaded.encoder.special_ids["eos"]
    print(args.prompt + loaded.encoder.decode([t for t in new if t != eos]))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from strata.train.evaluate import as_json, eval_build, eval_files, format_eval
    from strata.train.load import load_model

    loaded = load_model(args.source, args.step)
    data = args.data or ([loaded.run["data"]] if loaded.run else None)
    if not data:
        print("strata eval: give --data BUILD or files", file=sys.stderr)
        return 2
    if len(data) == 1 and not data[0].endswith((".jsonl", ".txt")):
        figures = eval_build(loaded, data[0], split=args.split, seq_len=args.seq_len, batch_size=args.batch_size,
                             eval_batches=args.eval_batches, seed=args.seed)
    else:
        figures = eval_files(loaded, data, seq_len=args.seq_len, seed=args.seed or 0)
    print(json.dumps(as_json(figures), indent=2) if args.json else format_eval(figures))
    return 0


def add_parsers(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser(
        "export", help="write a run's checkpoint as a Hugging Face model folder (transformers loads it)",
        description="GPT -> GPT2LMHeadModel, MLM encoder -> RobertaPreLayerNormForMaskedLM, safetensors weights, "
        "the build's tokenizer as tokenizer.json (same ids), and a model card README.md with the run's lineage.",
    )
    export.add_argument("run", metavar="RUN")
    export.add_argument("--step", type=int, help="the checkpoint of this step (default: the latest)")
    export.add_argument("--out", required=True, metavar="DIR")
    export.set_defaults(func=_export)

    generate = commands.add_parser("generate", help="continue a prompt with a GPT (a run or an exported folder)")
    generate.add_argument("source", metavar="RUN|DIR")
    generate.add_argument("--prompt", required=True)
    generate.add_argument("--max-new-tokens", type=int, default=64)
    generate.add_argument("--temperature", type=float, default=1.0, help="0: greedy")
    generate.add_argument("--top-k", type=int)
    generate.add_argument("--top-p", type=float)
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--step", type=int, help="for a RUN: the checkpoint of this step")
    generate.set_defaults(func=_generate)

    evaluate = commands.add_parser(
        "eval", help="loss, perplexity and bits per byte per category, on a build's validation blocks or on files",
        description="With a build, the trainer's validation (the same windows); with .jsonl/.txt files, documents "
        "encoded as in training (ids + EOS, packed, windows of seq_len).",
    )
    evaluate.add_argument("source", metavar="RUN|DIR")
    evaluate.add_argument("--data", nargs="+", metavar="BUILD|FILE", help="default: a RUN's build")
    evaluate.add_argument("--split", choices=("val",), default="val")
    for flag, meaning in (("--seq-len", "window tokens"), ("--batch-size", "windows per batch"),
                          ("--eval-batches", "batches per category"), ("--seed", "val order and MLM masks")):
        evaluate.add_argument(flag, type=int, help=f"{meaning} (default: a RUN's own)")
    evaluate.add_argument("--step", type=int, help="for a RUN: the checkpoint of this step")
    evaluate.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    evaluate.set_defaults(func=_eval)
