"""Public datasets labkit can download (``labkit data download NAME``): a small catalogue of
files with a stable address, a licence that allows teaching, and a pinned checksum. Each is
fetched once per machine (``labkit.downloads``) and imported like any archive."""
from __future__ import annotations

from dataclasses import dataclass

from labkit.downloads import Remote


@dataclass(frozen=True)
class PublicDataset:
    title: str
    remote: Remote
    images: int     # as published
    classes: tuple[str, ...]
    real_of: str    # the generator whose classes these are the real photos of (a lab's DATA=real)


DATASETS = {
    # The seeds' five flower classes, as TensorFlow's tutorials publish them; the checksum and
    # size are those tensorflow_datasets pins for tf_flowers.
    "flowers-photos": PublicDataset(
        "The seeds' 5 flower classes: photos from Flickr, of many sizes",
        Remote("https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
               "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c", 228813984,
               "CC BY 2.0, each photo; the photographers are listed in flower_photos/LICENSE.txt",
               "TensorFlow (tf_flowers)"),
        3670, ("daisy", "dandelion", "roses", "sunflowers", "tulips"), "flowers"),
}


def for_kind(kind: str) -> PublicDataset:
    """The public dataset of real photos for generator ``kind`` (a lab's ``DATA=real``)."""
    return DATASETS[name_for_kind(kind)]


def name_for_kind(kind: str) -> str:
    from labkit.errors import LabkitError

    found = [name for name, d in DATASETS.items() if d.real_of == kind]
    if not found:
        real = ", ".join(d.real_of for d in DATASETS.values())
        raise LabkitError(f"labkit knows no real photos for the {kind} data", f"DATA=real is for {real}; use generated")
    return found[0]
