"""strata.train (the folder train/): `strata train` and what uses a trained model.

    the data side     the streaming windows, mixed by category (mixing.py), read from the
                      shards and checked against the manifest (integrity.py), batched by a
                      loader, with the consumed lineage of every step (data*.py)
    the loop          trainer.py, with beside it optimizer.py, schedule.py, metrics.py (the
                      metrics rows and the progress line), validation.py, checkpoint.py and
                      rng_state.py, on the processes of runtime.py
    models            gpt.py, encoder.py, t5.py, xlnet.py, electra.py, by size in presets.py
    objectives        objectives/ (one file per family; registry.py names them)
    interchange       export.py (with model_card.py), hf_import.py, hf_models.py and the
                      hf_*.py it uses, load.py, generate.py, evaluate.py

The package root `strata` is the folder core/; core/README.md maps every folder.
"""
