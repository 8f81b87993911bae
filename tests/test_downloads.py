"""Downloads (labkit.downloads) against a real HTTP server the test starts: resumed after a
dropped connection, restarted where the server ignores Range, refused (and nothing kept) when
the bytes are not the published ones, fetched from a room's mirror, cached once."""
import hashlib
import os

import pytest

from helpers import labkit_cli, listing, quiet, remote_for
from labkit import downloads
from labkit.errors import LabkitError

PAYLOAD = os.urandom(3 * downloads.CHUNK + 12345)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(downloads.MIRROR_ENV, raising=False)
    return tmp_path / "cache" / "downloads"


def test_a_download_is_kept_once_and_then_read_from_the_cache(file_server, cache):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    path = downloads.fetch(remote, log=quiet)
    assert path == cache / "photos.tgz" and path.read_bytes() == PAYLOAD
    assert downloads.fetch(remote, log=quiet) == path
    assert len(file_server.requests) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["photos.tgz", "photos.tgz.lock"]


def test_a_dropped_connection_is_resumed_where_it_broke(file_server):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    file_server.drop_after = downloads.CHUNK + 777
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert file_server.requests == [("photos.tgz", None), ("photos.tgz", f"bytes={downloads.CHUNK + 777}-")]


def test_a_partial_file_of_an_earlier_run_is_continued(file_server, cache):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    cache.mkdir(parents=True)
    (cache / "photos.tgz.part").write_bytes(PAYLOAD[:1000])
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert file_server.requests == [("photos.tgz", "bytes=1000-")]


def test_a_server_that_ignores_range_sends_the_whole_file_again(file_server):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    file_server.ranges, file_server.drop_after = False, 5000
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert [r for _, r in file_server.requests] == [None, "bytes=5000-"]


def test_bytes_that_are_not_the_published_file_are_refused_and_nothing_is_kept(file_server, cache):
    published = hashlib.sha256(b"the published file").hexdigest()
    remote = remote_for(file_server, "photos.tgz", PAYLOAD, sha256=published)
    with pytest.raises(LabkitError) as err:
        downloads.fetch(remote, log=quiet)
    assert hashlib.sha256(PAYLOAD).hexdigest() in err.value.message and published in err.value.message
    assert "nothing was kept" in err.value.message
    assert not [p for p in cache.iterdir() if not p.name.endswith(".lock")]


def test_a_server_sending_more_than_the_published_size_is_cut_off(file_server, cache):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD, size=len(PAYLOAD) - 1)
    with pytest.raises(LabkitError, match="sends more than"):
        downloads.fetch(remote, log=quiet)
    assert not (cache / "photos.tgz").exists()
    assert not (cache / "photos.tgz.part").exists() or (cache / "photos.tgz.part").stat().st_size == 0


def test_a_catalogue_entry_pins_a_whole_sha256():
    with pytest.raises(ValueError, match="64 lowercase hex"):
        downloads.Remote("https://example.org/resnet50-11ad3fa6.pth", "11ad3fa6", 1, "", "")


def test_a_busy_server_is_tried_again_and_a_range_not_asked_for_starts_over(file_server):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    file_server.answers = [503, 429]
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert len(file_server.requests) == 3
    downloads.cached_path(remote).unlink()
    file_server.requests.clear()
    file_server.drop_after, file_server.answers = 1000, []
    downloads.fetch(remote, log=quiet)  # dropped after 1,000 bytes, then resumed
    downloads.cached_path(remote).unlink()
    partial = downloads.cached_path(remote).with_name("photos.tgz.part")
    partial.write_bytes(PAYLOAD[:100])
    file_server.requests.clear()
    file_server.answers = [206]  # the server answers "bytes 7-": not where the partial file ends
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert [r for _, r in file_server.requests] == ["bytes=100-", None]


def test_a_link_planted_as_the_partial_file_is_not_written_through(file_server, cache, tmp_path):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    victim = tmp_path / "someone-elses-file"
    victim.write_bytes(b"precious")
    cache.mkdir(parents=True)
    (cache / "photos.tgz.part").symlink_to(victim)
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert victim.read_bytes() == b"precious"


def test_a_mirror_folder_gives_only_a_plain_file_of_the_published_size(tmp_path):
    folder = tmp_path / "usb-stick"
    folder.mkdir()
    remote = downloads.Remote("http://127.0.0.1:9/photos.tgz", hashlib.sha256(PAYLOAD).hexdigest(), 10, "", "")
    (folder / "photos.tgz").write_bytes(PAYLOAD)   # bigger than published
    with pytest.raises(LabkitError, match="is not the published photos.tgz"):
        downloads.fetch(remote, mirror=str(folder), log=quiet)
    (folder / "photos.tgz").unlink()
    (folder / "photos.tgz").symlink_to("/dev/zero")
    with pytest.raises(LabkitError, match="has no photos.tgz"):
        downloads.fetch(remote, mirror=str(folder), log=quiet)


def test_offline_the_error_names_the_file_its_checksum_and_where_to_put_it(file_server, cache):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    file_server.close()  # nobody listens there any more
    with pytest.raises(LabkitError) as err:
        downloads.fetch(remote, log=quiet)
    hint = err.value.hint
    assert remote.url in hint and remote.sha256 in hint and str(cache / "photos.tgz") in hint
    assert "--mirror" in hint


def test_a_rooms_mirror_serves_the_file_and_the_catalogue_checks_it(file_server, monkeypatch):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    unreachable = downloads.Remote("http://127.0.0.1:9/far/away/photos.tgz", remote.sha256, remote.size, "", "")
    assert downloads.fetch(unreachable, mirror=file_server.url + "/", log=quiet).read_bytes() == PAYLOAD
    (downloads.cached_path(remote)).unlink()
    monkeypatch.setenv(downloads.MIRROR_ENV, file_server.url)
    assert downloads.fetch(unreachable, log=quiet).read_bytes() == PAYLOAD
    assert [name for name, _ in file_server.requests] == ["photos.tgz", "photos.tgz"]
    file_server.files["photos.tgz"] = PAYLOAD[::-1]  # a mirror holding another file changes nothing
    downloads.cached_path(remote).unlink()
    with pytest.raises(LabkitError, match="is not the published"):
        downloads.fetch(unreachable, log=quiet)


def test_a_shared_folder_serves_as_a_mirror(tmp_path):
    folder = tmp_path / "usb-stick"
    folder.mkdir()
    (folder / "photos.tgz").write_bytes(PAYLOAD)
    remote = downloads.Remote("http://127.0.0.1:9/photos.tgz", hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD), "", "")
    assert downloads.fetch(remote, mirror=str(folder), log=quiet).read_bytes() == PAYLOAD
    missing = downloads.Remote("http://127.0.0.1:9/other.tgz", "0" * 64, 1, "", "")
    with pytest.raises(LabkitError, match="has no other.tgz"):
        downloads.fetch(missing, mirror=str(folder), log=quiet)


def test_a_damaged_cached_copy_is_fetched_again(file_server, cache):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    path = downloads.fetch(remote, log=quiet)
    path.write_bytes(b"damaged")
    said = []
    assert downloads.fetch(remote, log=said.append).read_bytes() == PAYLOAD
    assert "does not match its checksum" in said[0]


def test_a_refusal_by_the_server_is_a_clear_error(file_server):
    remote = remote_for(file_server, "photos.tgz", PAYLOAD)
    del file_server.files["photos.tgz"]
    with pytest.raises(LabkitError, match="answered HTTP 404"):
        downloads.fetch(remote, log=quiet)


def test_a_file_published_without_its_size_is_resumed_and_checked_all_the_same(file_server):
    remote = remote_for(file_server, "model.bin", PAYLOAD, size=None)
    file_server.drop_after = 4096
    assert downloads.fetch(remote, log=quiet).read_bytes() == PAYLOAD
    assert [r for _, r in file_server.requests] == [None, "bytes=4096-"]


def flower_photos_tgz(per_class=3) -> bytes:
    """A small archive in the layout of TensorFlow's flower_photos.tgz: one folder around the five
    class folders, LICENSE.txt among them."""
    import io
    import tarfile

    from PIL import Image

    from labkit.data.public import DATASETS

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        def add(name, payload):
            info = tarfile.TarInfo(f"flower_photos/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

        for n, label in enumerate(DATASETS["flowers-photos"].classes):
            for i in range(per_class):
                jpeg = io.BytesIO()
                Image.new("RGB", (40 + 7 * i, 30), (50 * n, 20 * i, 90)).save(jpeg, "JPEG")
                add(f"{label}/{1000 * n + i}_flickr.jpg", jpeg.getvalue())
            if n == 2:
                add("LICENSE.txt", b"All images in this archive are licensed under the Creative Commons By-Attribution")
    return buf.getvalue()


def test_a_public_dataset_is_downloaded_once_and_imported(file_server, monkeypatch, tmp_path):
    import dataclasses

    from labkit import data
    from labkit.data.public import DATASETS

    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "ws"))
    entry = DATASETS["flowers-photos"]
    remote = remote_for(file_server, "flower_photos.tgz", flower_photos_tgz())
    monkeypatch.setitem(DATASETS, "flowers-photos", dataclasses.replace(entry, remote=remote))
    rec = data.download("flowers-photos", log=quiet)
    assert rec["classes"] == list(entry.classes) and rec["count"] == 15
    assert rec["report"]["skipped"] == [{"file": "LICENSE.txt", "reason": "not inside a class sub-folder"}]
    assert rec["source"]["url"] == remote.url and rec["source"]["licence"] == remote.licence
    again = data.download("flowers-photos", log=quiet)
    assert again["reused"] and len(file_server.requests) == 1
    assert data.publish("flowers-photos")["counts"]["train"]["images"] == 10


def test_a_mirror_serving_another_archive_imports_nothing(file_server, tmp_path):
    """The real catalogue entry, its file replaced on a room's mirror by an archive of the same
    name: refused by its checksum, the cache and the workspace as they were."""
    file_server.files["flower_photos.tgz"] = flower_photos_tgz()
    env = {"LABKIT_HOME": str(tmp_path / "ws"), "LABKIT_CACHE": str(tmp_path / "cache")}
    proc = labkit_cli("data", "download", "flowers-photos", "--mirror", file_server.url, env=env, check=False)
    assert proc.returncode == 1 and "is not the published flower_photos.tgz" in proc.stderr, proc.stderr
    assert "4c54ace7911aaffe13a365c34f650e71dd5bf1be0a58b464e5a7183e3e595d9c" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [p for p in listing(tmp_path) if not p.endswith(".lock")] == []
