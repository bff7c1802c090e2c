"""The keyword tagger family: synthetic SFT data (`synth`, `teachers`), its contract
(`contracts`), LoRA SFT (`sft`), backends behind one interface (`backends/`), the inference path
(`pipeline`), metrics and evaluation, the registered artifact (`artifact`) and the stage
functions the flows run (`stages`)."""
