"""``lm-zoo weights list | info NAME | verify [NAME_OR_PATH ...]``: the pretrained weight sets.

Reads only the registry (``lm_zoo.pretrained``) and hashes files; never imports Keras.
"""
from __future__ import annotations


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="one line per registered weight set: classes, modality, file status")
    info = sub.add_parser("info", help="everything the registry knows about one weight set")
    info.add_argument("name", help="registered weight set name (see `lm-zoo weights list`)")
    verify = sub.add_parser("verify", help="check weights files against their sha256 (default: every shipped set)")
    verify.add_argument("targets", nargs="*", metavar="NAME_OR_PATH",
                        help="registered names or .weights.h5 paths (a path needs --sha256 or a sidecar JSON)")
    verify.add_argument("--sha256", help="expected hash for a single path")


def _status(ws) -> str:
    from lm_zoo import pretrained

    local = pretrained.local_path(ws)
    if local.exists():
        return "shipped" if ws.sha256 else "shipped, no sha256 registered"
    if ws.origin:
        return f"remote ({ws.origin})"
    return "not yet available"


def run(args) -> int:
    from lm_zoo import pretrained

    if args.action == "list":
        print(f"{'name':<12} {'classes':>7} {'modality':<8} {'status':<20} file")
        for name in sorted(pretrained.WEIGHT_SETS):
            ws = pretrained.WEIGHT_SETS[name]
            print(f"{name:<12} {ws.n_classes or '-':>7} {ws.modality:<8} {_status(ws):<20} {ws.filename}")
        return 0
    if args.action == "info":
        ws = pretrained.get_weight_set(args.name)
        prep = ws.preprocessing
        print(f"name:          {ws.name}")
        print(f"file:          {pretrained.local_path(ws)} ({_status(ws)})")
        print(f"sha256:        {ws.sha256 or '-'}")
        print(f"origin:        {ws.origin or '-'}")
        print(f"trained on:    {ws.data or '-'}")
        print(f"modality:      {prep['modality']}")
        print(f"ct window:     level {prep['ct_window']['level']} HU, width {prep['ct_window']['width']} HU"
              if "ct_window" in prep else "ct window:     -")
        print(f"rgb scale:     {prep.get('rgb_scale', '-')}")
        print(f"mean / std:    {tuple(prep['mean'])} / {tuple(prep['std'])}")
        print(f"classes ({ws.n_classes or 0}):")
        for i, (cls, desc) in enumerate(zip(ws.class_names, ws.descriptions)):
            print(f"  {i:3d} {cls:<28} {desc}")
        return 0
    return _verify(args)


def _verify(args) -> int:
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
        pretrained._check_sha256(args.sha256, "--sha256")  # a malformed hash is a usage error, before any hashing
    failed = 0
    for target in targets:
        try:
            path = pretrained.verify(target, args.sha256)
            print(f"OK      {target}: {path}")
        except (pretrained.WeightsIntegrityError, pretrained.WeightsNotAvailableError, FileNotFoundError) as err:
            failed += 1
            print(f"FAILED  {target}: {err}")
    return 1 if failed else 0
