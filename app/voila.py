"""How Voila serves the reviewer's app: `make app` reads this file (--Voila.config_file_paths=app),
and so does `voila reviewer.ipynb` started in this folder.

Voila serves the notebook's folder (app/): the kernel of a page runs here, and the app writes
each explanation into explained/ (`tdexplain.interfaces.app.ReviewerApp`).
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - given by traitlets when it reads this file
HERE = Path(__file__).resolve().parent

# Every visit starts a kernel of about 1 GB (TensorFlow and the model). A kernel that no page is
# connected to (its tab closed, or left before it loaded) is shut down after 5 idle minutes,
# checked every minute; a page still open keeps its kernel (a reviewer reading a result loses
# nothing), and a kernel explaining a video is busy, never idle. No kernel is started ahead of
# a visit (a pool would hold 1 GB each).
c.MappingKernelManager.cull_idle_timeout = 300
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_connected = False
c.MappingKernelManager.cull_busy = False
c.VoilaConfiguration.preheat_kernel = False

# The downloads are files, served at /voila/files/explained/...: the files of an explanation
# and nothing else of the folder (not this file, not the notebook). Voila serves them without
# asking for its token; each explanation's folder has a random name.
c.VoilaConfiguration.file_allowlist = [r"explained/tdexplain_[a-z0-9_]+/(overlay\.mp4|summary\.json|timeline\.png)"]

# Nothing is asked of the internet: the "reviewer" template (jupyter/voila/templates/reviewer) is
# Voila's lab template without its Font Awesome stylesheets from cdn.jsdelivr.net (the app shows
# no icon). Voila finds templates on the Jupyter data path only, so this folder joins it here.
os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(HERE / "jupyter"), os.environ.get("JUPYTER_PATH")]))
c.VoilaConfiguration.template = "reviewer"
# Only the extensions the widgets need are loaded (not jupyterlab_pygments: no code is shown).
# The browser's console still warns "Unsatisfied version 4.2.5 ... of shared singleton module
# @jupyterlab/..." 13 times: Voila 0.5.13 ships JupyterLab 4.2.5's modules, and both widget
# extensions were built against newer ones (jupyterlab_widgets 3.0.17 against 4.6.2, Voila's own
# widgets-manager8 against 4.5.10); they work with 4.2.5, and no setting changes the versions.
c.VoilaConfiguration.extension_allowlist = ["@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8"]
