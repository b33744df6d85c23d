"""Beam builds run offline and clean (lm_zoo.dataset_builder.beam_runner): the DirectRunner is
pinned to its in-process engine (no Prism download), the examples are the local build's, and
nothing is left in the temp folder."""
from __future__ import annotations

import ipaddress
import socket
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

import lm_zoo.datasets  # noqa: F401  (registers the builders)
from lm_zoo.dataset_builder import beam_runner

beam = pytest.importorskip("apache_beam")
PipelineOptions = beam.options.pipeline_options.PipelineOptions


def config(*flags, runner=None):
    return tfds.download.DownloadConfig(beam_options=PipelineOptions(list(flags)) if flags else None,
                                        beam_runner=runner)


@pytest.mark.parametrize("flags", [(), ("--runner=DirectRunner",), ("--runner=direct",), ("--direct_num_workers=2",),
                                   ("--runner=apache_beam.runners.direct.direct_runner.SwitchingDirectRunner",)])
def test_the_direct_runner_or_none_is_pinned_to_the_in_process_engine(flags):
    asked = config(*flags) if flags else tfds.download.DownloadConfig(beam_options=PipelineOptions([]))
    pinned = beam_runner.offline_download_config(asked)
    assert pinned is not asked and asked.beam_runner is None  # the caller's config is left as it was
    assert pinned.beam_runner is not None
    assert "Prism" not in type(pinned.beam_runner).__name__


@pytest.mark.parametrize("flags", [("--runner=FlinkRunner",), ("--runner=DataflowRunner",), ("--runner=PrismRunner",),
                                   ("--runner=SparkRunner",)])
def test_other_runners_are_left_as_asked(flags):
    asked = config(*flags)
    assert beam_runner.offline_download_config(asked) is asked


def test_a_runner_object_is_left_as_given():
    runner = beam.runners.direct.direct_runner.BundleBasedDirectRunner()
    asked = config(runner=runner)
    assert beam_runner.offline_download_config(asked).beam_runner is runner


def test_several_direct_workers_run_as_processes_unless_threads_are_asked_for():
    from apache_beam.options.pipeline_options import DirectOptions

    user_options = PipelineOptions(["--runner=DirectRunner", "--direct_num_workers=2"])
    pinned = beam_runner.offline_download_config(tfds.download.DownloadConfig(beam_options=user_options))
    assert pinned.beam_options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    assert user_options.view_as(DirectOptions).direct_running_mode == "in_memory"  # the user's object untouched
    threads = config("--direct_num_workers=2", "--direct_running_mode=multi_threading")
    assert beam_runner.offline_download_config(threads).beam_options.view_as(
        DirectOptions).direct_running_mode == "multi_threading"
    one = config("--runner=DirectRunner")
    assert beam_runner.offline_download_config(one).beam_options.view_as(DirectOptions).direct_running_mode == "in_memory"


# ------------------------------------------------------------------------------ builds
@pytest.fixture
def no_network(monkeypatch):
    """Every name lookup and connection to a non-loopback host is refused and recorded (Beam
    swallows the error of a failed download and falls back, so the record is what is checked)."""
    attempts = []

    def is_local(host) -> bool:
        if host in (None, "localhost", ""):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    real_getaddrinfo, real_connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            attempts.append(("getaddrinfo", host))
            raise OSError(f"test: network access to {host} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if isinstance(address, tuple) and not is_local(address[0]):
            attempts.append(("connect", address))
            raise OSError(f"test: connection to {address} refused")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def temp_folder(tmp_path, monkeypatch):
    """An empty system temp folder for this process and the worker processes it starts."""
    folder = tmp_path / "system_tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def build_numpy(data_dir: Path, downloads: Path, download_config=None) -> dict:
    builder = tfds.builder("landmark_ct_patches/phantom_tiny", data_dir=str(data_dir))
    builder.download_and_prepare(download_dir=str(downloads), download_config=download_config)
    return {split: tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1)) for split in builder.info.splits}


@pytest.mark.slow
def test_beam_builds_the_local_examples_offline_leaving_no_temp_folder(tmp_path, no_network, temp_folder,
                                                                        assert_same_examples):
    downloads = tmp_path / "downloads"  # one phantom cohort for the three builds
    local = build_numpy(tmp_path / "local", downloads)
    # In-process: the refused lookups above would see a runner download (Prism's).
    in_process = build_numpy(tmp_path / "beam", downloads, config("--runner=DirectRunner"))
    assert no_network == []
    assert_same_examples(local, in_process)
    # Two worker processes (their sockets are out of this process's reach; their temp folders are not).
    two = build_numpy(tmp_path / "beam2", downloads, config("--runner=DirectRunner", "--direct_num_workers=2"))
    assert_same_examples(local, two)
    assert no_network == []
    assert sorted(p.name for p in temp_folder.iterdir()) == []
    assert sum(len(ds["label"]) for ds in local.values()) > 0 and np.isfinite(local["train"]["patch"]).all()
