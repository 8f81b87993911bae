"""A workshop room on one server (JupyterHub, docs/HUB.md): what the hub does for each seat
(``seats``: a private workspace, the lessons, a share of the cores, clean-up when the server
stops), and the instructor's view of every learner (``learners``: ``labkit room status``, and
``page``: the same as a page in the hub)."""
