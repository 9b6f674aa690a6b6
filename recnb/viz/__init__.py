"""Every figure of the series (seaborn and matplotlib); calculations live in the layers below.

- ``data_plots``: the data (who rates how much, popularity, genres, years, the k-core filter, the split)
  and the series' style (``set_style``, ``PALETTE``);
- ``baseline_plots``: metrics, ranks and the baselines of notebooks 02 to 05;
- ``model_plots``: SASRec's embeddings, masks, attention and diagram;
- ``training_plots``: training curves (one run's panels, or several runs side by side), number formats,
  precision and the learning-rate schedule;
- ``comparison_plots``: the HR@K curve of every notebook, and the comparison of notebook 08 and
  ``python -m recnb compare``.

Import rule: ``recnb.viz`` may use ``recnb.data``, ``recnb.evaluation`` and ``recnb.models``, never
``recnb.teaching`` or the command line.
"""
