"""The keyword tagger family: synthetic SFT data (`synth`, `teachers`), its contract
(`contracts`), LoRA SFT (`sft`), backends behind one interface (`backends/`), the inference path
(`pipeline`), metrics and evaluation, the registered artifact (`artifact`) and registration
(`register`). Each module behind a dvc.yaml stage has a `run(cfg)` that the flows call."""
