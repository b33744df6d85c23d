"""``lm-zoo weights list | info NAME | verify [NAME_OR_PATH ...]``: the pretrained weight sets.

Reads only the presets (``lm_zoo.pretrained``) and hashes files; never imports Keras. Each
action is one entry of :data:`ACTIONS` (``name -> (help, add_arguments, run)``), so another
action is one function pair and one line there.
"""
from __future__ import annotations


def _status(ws) -> str:
    from lm_zoo import pretrained

    local = pretrained.local_path(ws)
    if local.exists():
        return "shipped" if ws.sha256 else "shipped, no sha256 registered"
    if ws.origin:
        return f"remote ({ws.origin})"
    return "not yet available"


# ---------------------------------------------------------------------------- list
def _add_list(parser) -> None:
    pass


def _run_list(args) -> int:
    from lm_zoo import pretrained

    header = ("name", "classes", "modality", "status", "file")
    rows = [(name, str(ws.n_classes or "-"), ws.modality, _status(ws), ws.filename)
            for name, ws in sorted(pretrained.WEIGHT_SETS.items())]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        name, classes, modality, status, file = row
        print(f"{name:<{widths[0]}}  {classes:>{widths[1]}}  {modality:<{widths[2]}}  {status:<{widths[3]}}  {file}")
    return 0


# ---------------------------------------------------------------------------- info
def _add_info(parser) -> None:
    parser.add_argument("name", help="registered weight set name (see `lm-zoo weights list`)")


def _run_info(args) -> int:
    from lm_zoo import pretrained

    ws = pretrained.get_weight_set(args.name)
    prep = ws.preprocessing
    print(f"name:          {ws.name}")
    print(f"version:       {ws.version or '-'}")
    print(f"file:          {pretrained.local_path(ws)} ({_status(ws)})")
    print(f"sha256:        {ws.sha256 or '-'}")
    print(f"origin:        {ws.origin or '-'}")
    print(f"trained on:    {ws.data or '-'}")
    print(f"modality:      {prep['modality']}")
    print(f"ct window:     level {prep['ct_window']['level']} HU, width {prep['ct_window']['width']} HU"
          if "ct_window" in prep else "ct window:     -")
    print(f"rgb scale:     {prep.get('rgb_scale', '-')}")
    print(f"mean / std:    {tuple(prep['mean'])} / {tuple(prep['std'])}")
    print(f"patches:       {ws.patch_size} px at {ws.spacing_mm} mm" if ws.modality != "rgb" else "patches:       -")
    print(f"classes ({ws.n_classes or 0}):")
    for i, (cls, desc) in enumerate(zip(ws.class_names, ws.descriptions)):
        print(f"  {i:3d} {cls:<28} {desc}")
    return 0


# ---------------------------------------------------------------------------- verify
def _add_verify(parser) -> None:
    parser.add_argument("targets", nargs="*", metavar="NAME_OR_PATH",
                        help="registered names or .weights.h5 paths (a path needs --sha256 or a sidecar JSON)")
    parser.add_argument("--sha256", help="expected hash for a single path")


def _run_verify(args) -> int:
    from lm_zoo import pretrained

    targets = args.targets
    if not targets:
        targets = [n for n, ws in sorted(pretrained.WEIGHT_SETS.items()) if pretrained.local_path(ws).exists()]
        if not targets:
            print("no weight set file is shipped in this installation; nothing to verify")
            return 0
    if args.sha256 and len(targets) != 1:
        raise ValueError(f"--sha256 checks a single path; got {len(targets)} targets")
    if args.sha256:
        pretrained.check_sha256(args.sha256, "--sha256")  # a malformed hash is a usage error, before any hashing
    failed = 0
    for target in targets:
        try:
            path = pretrained.verify(target, args.sha256)
            print(f"OK      {target}: {path}")
        except (pretrained.WeightsIntegrityError, pretrained.WeightsNotAvailableError, FileNotFoundError) as err:
            failed += 1
            print(f"FAILED  {target}: {err}")
    return 1 if failed else 0


def _delegate(module: str):
    """(add_arguments, run) of an action that lives in its own command module, imported when used."""
    import importlib

    return (lambda parser: importlib.import_module(module).add_arguments(parser),
            lambda args: importlib.import_module(module).run(args))


# action -> (one-line help, add_arguments(parser), run(args) -> exit code)
ACTIONS = {
    "list": ("one line per registered weight set: classes, modality, file status", _add_list, _run_list),
    "info": ("everything the preset of one weight set holds", _add_info, _run_info),
    "verify": ("check weights files against their sha256 (default: every shipped set)", _add_verify, _run_verify),
    "calibrate": ("calibrate a landmark set's detector on phantom cases and write its detection.json "
                  "(--metrics: also its detection figures)", *_delegate("lm_zoo.commands.weights_calibrate")),
    "card": ("regenerate a shipped set's model card from its run files (--check: compare only)",
             *_delegate("lm_zoo.commands.weights_card")),
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, (help_text, add, _) in ACTIONS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))


def run(args) -> int:
    return ACTIONS[args.action][2](args)
