"""ipywidgets forms for the notebooks, pre-filled from the parameters cell: a learner
changes them and re-runs the next cell; a headless papermill run never touches them."""
from __future__ import annotations

from labkit.i18n import word


class Form:
    """A vertical box of named widgets; ``values()`` reads what is set now."""

    def __init__(self, title: str, **controls):
        import ipywidgets as w

        self.controls = controls
        self.box = w.VBox([w.HTML(f"<b>{title}</b>"), *controls.values()])

    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)


def data_form(kind: str, name: str, count: int, size: int, train_ratio: float, seed: int) -> Form:
    import ipywidgets as w

    from labkit.data import GENERATORS

    style = {"description_width": "110px"}
    return Form(
        word("dataset form"),
        kind=w.Dropdown(options=GENERATORS, value=kind, description=word("generator"), style=style),
        name=w.Text(value=name, description=word("dataset name"), style=style),
        count=w.IntSlider(value=count, min=10, max=max(5000, count), step=10, description=word("images"),
                          style=style),
        size=w.Dropdown(options=sorted({32, 64, 96, 128, 224, 240, 256, 512, 1024, size}), value=size,
                        description=word("size"), style=style),
        train_ratio=w.FloatSlider(value=train_ratio, min=0.5, max=0.95, step=0.05, description=word("train ratio"),
                                  style=style),
        seed=w.IntText(value=seed, description=word("seed"), style=style),
    )


def follow_job(ref: str, poll: float = 1.0) -> dict:
    """Follow a training job: a tqdm bar over its epochs and a live learning-curve plot,
    until it ends. Returns the job's final record."""
    from IPython.display import display

    from labkit import plots, train
    from labkit.train.follow import watch

    handle = display(None, display_id=True)
    watch(ref, bar=True, poll=poll,
          on_epoch=lambda _: handle.update(plots.learning_curves(train.metrics(ref), title=ref)))
    return train.show(ref)


def predict_panel(service: str, choices: list, default=None):
    """Predict through a running service: pick a validation image or upload one, press
    Predict; the answer is drawn (scores, or the density map). Returns the widget box."""
    import ipywidgets as w
    from IPython.display import display

    from labkit import plots
    from labkit.serve import services

    pick = w.Dropdown(options=[(str(p.name), p) for p in choices], value=default or choices[0],
                      description=word("image"))
    upload = w.FileUpload(accept="image/*", multiple=False, description=word("or upload"))
    button = w.Button(description=word("predict"), button_style="primary")
    out = w.Output()

    def run(_):
        out.clear_output()
        with out:
            data = bytes(upload.value[0]["content"]) if upload.value else pick.value.read_bytes()
            answer = services.predict(service, data)
            display(plots.prediction(data, answer, title=word("service", name=service)))
    button.on_click(run)
    return w.VBox([w.HBox([pick, upload, button]), out])
