"""Pure ``nn.Module`` definitions of the FERS networks (no training loop here).

- ``teacher``: the spectral enhancer (the pruned stage-1 FEN that is exported) and the stage-1 reverse-distillation
  training network around it.
- ``student``: the spatial student of stage 2 (exported at a fixed tile size).
- ``restoration``: the feature restoration network, used only while training stage 2.
"""
