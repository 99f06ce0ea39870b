"""download(): offline tests with file:// URLs standing in for the real mirrors."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

import softlif.data.fetch as fetch
from softlif.data import DataError, data_home, download, load_split, safe_extract_tar
from softlif.data.fetch import Remote


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def serve(tmp_path: Path, name: str, data: bytes) -> str:
    src = tmp_path / "server"
    src.mkdir(exist_ok=True)
    (src / name).write_bytes(data)
    return (src / name).as_uri()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_real_table_is_complete():
    assert set(fetch.RESOURCES) == {"mnist", "fashion-mnist", "cifar10", "cifar100", "svhn"}
    for remotes in fetch.RESOURCES.values():
        for r in remotes:
            assert len(r.md5) == 32 and all(u.startswith(("http://", "https://")) for u in r.urls)


def test_download_verifies_and_renames(tmp_path, monkeypatch):
    data = b"hello softlif" * 100
    url = serve(tmp_path, "f.bin", data)
    monkeypatch.setattr(fetch, "RESOURCES", {"mnist": (Remote("f.bin", (url,), md5(data)),)})
    root = tmp_path / "data"
    assert download("mnist", root, verbose=False) == root
    assert (root / "f.bin").read_bytes() == data and leftovers(root) == []
    # present and verified: nothing is fetched again, even with the server gone
    (tmp_path / "server" / "f.bin").unlink()
    assert download("mnist", root, verbose=False) == root


def test_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    url = serve(tmp_path, "f.bin", b"tampered")
    monkeypatch.setattr(fetch, "RESOURCES", {"svhn": (Remote("f.bin", (url,), md5(b"orig")),)})
    root = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch for f.bin"):
        download("svhn", root, verbose=False)
    assert list(root.iterdir()) == []


def test_mirror_fallback_and_recompressed_gzip(tmp_path, monkeypatch):
    raw = b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03"
    official_gz = gzip.compress(raw, mtime=0)
    mirror_gz = gzip.compress(raw, compresslevel=1, mtime=12345)  # other bytes, same content
    assert md5(official_gz) != md5(mirror_gz)
    url = serve(tmp_path, "x.gz", mirror_gz)
    dead = (tmp_path / "nope" / "x.gz").as_uri()
    remote = Remote("x.gz", (dead, url), md5(official_gz), raw_md5=md5(raw))
    monkeypatch.setattr(fetch, "RESOURCES", {"mnist": (remote,)})
    download("mnist", tmp_path / "d", verbose=False)
    assert gzip.decompress((tmp_path / "d" / "x.gz").read_bytes()) == raw


def test_offline_error_says_where_to_put_files(tmp_path, monkeypatch):
    dead = (tmp_path / "offline" / "f.bin").as_uri()
    monkeypatch.setattr(fetch, "RESOURCES", {"cifar10": (Remote("f.bin", (dead,), "0" * 32),)})
    root = tmp_path / "data"
    with pytest.raises(DataError) as info:
        download("cifar10", root, verbose=False)
    msg = str(info.value)
    assert "offline" in msg and str(root) in msg and "f.bin" in msg and dead in msg
    assert leftovers(root) == []


def test_default_root_follows_softlif_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTLIF_DATA", str(tmp_path / "cache"))
    assert data_home("mnist") == tmp_path / "cache" / "mnist"
    data = b"abc"
    url = serve(tmp_path, "f.bin", data)
    monkeypatch.setattr(fetch, "RESOURCES", {"mnist": (Remote("f.bin", (url,), md5(data)),)})
    assert download("mnist", verbose=False) == tmp_path / "cache" / "mnist"
    monkeypatch.delenv("SOFTLIF_DATA")
    assert data_home("svhn") == Path("~/.cache/softlif/svhn").expanduser()


def _tar(members: dict[str, bytes], extra=None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or ():
            tar.addfile(info)
    return buf.getvalue()


def test_cifar_archive_is_extracted_and_loadable(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    members = {}
    for name in [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]:
        rec = rng.integers(0, 256, (3, 3073), dtype=np.uint8)
        rec[:, 0] %= 10
        members[f"cifar-10-batches-bin/{name}"] = rec.tobytes()
    members["cifar-10-batches-bin/batches.meta.txt"] = b"\n".join(b"c%d" % i for i in range(10))
    archive = _tar(members)
    url = serve(tmp_path, "cifar-10-binary.tar.gz", archive)
    real = fetch.RESOURCES["cifar10"][0]
    patched = Remote(real.filename, (url,), md5(archive), extract=True, provides=real.provides)
    monkeypatch.setattr(fetch, "RESOURCES", {"cifar10": (patched,)})
    root = download("cifar10", tmp_path / "c10", verbose=False)
    s = load_split("cifar10", root, "train")
    assert s.images.shape == (15, 3, 32, 32) and s.classes[0] == "c0"
    assert leftovers(root) == []
    (tmp_path / "server" / "cifar-10-binary.tar.gz").unlink()
    download("cifar10", root, verbose=False)  # already extracted: no fetch


@pytest.mark.parametrize("bad", ["../evil.txt", "/tmp/evil-abs.txt", "a/../../evil.txt"])
def test_unsafe_tar_paths_are_refused(tmp_path, bad):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar({"ok/file.txt": b"x", bad: b"evil"}))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="unsafe path"):
        safe_extract_tar(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_links_in_tar_are_refused(tmp_path):
    link = tarfile.TarInfo("ok/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(_tar({"ok/file.txt": b"x"}, [link]))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(DataError, match="refusing link"):
        safe_extract_tar(archive, dest)
    assert list(dest.iterdir()) == []
    archive.write_bytes(b"not a tar")
    with pytest.raises(DataError, match="cannot extract archive"):
        safe_extract_tar(archive, dest)


def test_unknown_names():
    with pytest.raises(ValueError, match="image-net.org"):
        download("imagenet")
    with pytest.raises(ValueError, match="cannot download 'npz'"):
        download("npz")
