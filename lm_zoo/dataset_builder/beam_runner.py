"""Which Beam runner a local Beam build uses: the DirectRunner's own engine, never a download.

Beam 2.78's ``DirectRunner`` first tries the Prism runner, a Go binary it downloads from GitHub
on first use (an internet access in the middle of a build; offline it fails, leaves a
``beam-temp*`` job-server folder and ``beam-requirements-cache`` behind, and falls back). A build
asking for the DirectRunner (or for no runner at all) therefore runs on the engine the
DirectRunner falls back to, the in-process ``FnApiRunner``, which reads the same
``direct_num_workers`` / ``direct_running_mode`` options and downloads nothing. Other runners
(Flink, Spark, Dataflow, an explicit ``PrismRunner``) are left as asked: they are the user's choice.
"""
from __future__ import annotations

import copy
import dataclasses

__all__ = ["LOCAL_RUNNER_NAMES", "asks_for_local_runner", "offline_download_config"]

# The names (any case, with or without "Runner") that mean "run it here" (Beam's DirectRunner).
LOCAL_RUNNER_NAMES = frozenset({"direct", "directrunner", "switchingdirectrunner"})


def asks_for_local_runner(download_config) -> bool:
    """True when a Beam build names no runner object and its options name the DirectRunner or none."""
    if download_config is None or download_config.beam_runner is not None:
        return False
    options = download_config.beam_options
    if options is None:
        return True
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return True
    return isinstance(runner, str) and runner.rsplit(".", 1)[-1].lower() in LOCAL_RUNNER_NAMES


def offline_download_config(download_config):
    """``download_config`` with the DirectRunner's in-process engine pinned when it asks for the
    DirectRunner (:func:`asks_for_local_runner`), else unchanged. Several ``direct_num_workers``
    run as processes unless ``multi_threading`` is asked for (``in_memory``, the default mode,
    would run them one at a time)."""
    if not asks_for_local_runner(download_config):
        return download_config
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    # A copy: the caller's options object is theirs.
    options = copy.deepcopy(download_config.beam_options) if download_config.beam_options is not None \
        else PipelineOptions()
    direct = options.view_as(DirectOptions)
    if direct.direct_num_workers != 1 and direct.direct_running_mode == "in_memory":
        direct.direct_running_mode = "multi_processing"
    return dataclasses.replace(download_config, beam_options=options, beam_runner=_local_runner())


def _local_runner():
    """A runner that runs each pipeline on a fresh ``FnApiRunner`` built the way the DirectRunner
    builds it: the options, as they stand when the pipeline runs (TFDS sets some after this
    config is made), handed to its workers through the provision info."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    from apache_beam.runners.runner import PipelineRunner

    class LocalDirectRunner(PipelineRunner):
        def run_pipeline(self, pipeline, options):
            encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
            runner = fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
                beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))
            return runner.run_pipeline(pipeline, options)

    return LocalDirectRunner()
