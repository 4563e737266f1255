"""Pictures of a model at work, and the HTML page that gathers them.

One module per picture kind, each a function returning a :class:`Picture`
(PNG bytes and its size):

- :mod:`.ranked_grid`: queries and their top-k gallery images, a modality
  badge on each, green / red frames for true / false matches;
- :mod:`.cmc`: CMC curves of one or several evaluations on one plot;
- :mod:`.loss_curves`: each loss term of a run's metrics.jsonl, validation
  mAP / R1 overlaid;
- :mod:`.embedding_map`: features projected to 2-D (PCA, or t-SNE with
  scikit-learn), coloured by identity and marked by modality;
- :mod:`.html_page`: one self-contained HTML page (pictures as data: URIs).

matplotlib is imported inside the functions (the ``[report]`` extra), so
``import vdreid`` stays light; a picture asked for without it is an
:class:`~vdreid.errors.ExtraNotInstalled` naming the extra.
"""

from vdreid.report.figure import Picture

__all__ = ["Picture"]
