"""`tagflow <command>`: one command per pipeline step (each dvc.yaml stage runs one), plus the
registry and serving commands people run by hand. Pipeline steps run as Prefect flows
(flows/stages.py); this module only parses arguments and turns errors into clear messages."""
from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from pathlib import Path


def _stage(name: str):
    def run(args):
        from flows import stages
        getattr(stages, f"{name}_flow")(params=args.params)
    return run


def cmd_fetch(args):
    from .config import load_config
    from .fetch import fetch_thesaurus

    cfg = load_config(args.params)
    fetch_thesaurus(cfg.thesaurus.url, cfg.thesaurus.dump, mirror=args.mirror, force=args.force)


def cmd_profile(args):
    """Switch profiles by editing the `profile:` line (comments and layout kept)."""
    from .config import load_config

    path = Path(args.params)
    text = path.read_text()
    new, n = re.subn(r"(?m)^profile:\s*\S+", f"profile: {args.name}", text, count=1)
    if n != 1:
        raise SystemExit(f"{path}: no top-level `profile:` line to change")
    load_config(path, profile=args.name)  # refuse unknown profiles before writing
    path.write_text(new)
    print(f"profile set to {args.name} in {path}")


def cmd_promote(args):
    from . import registry
    from .config import load_config

    name = load_config(args.params).registry.model_name
    registry.promote(name, str(args.version), who=args.who, why=args.why)
    print(f"{name} v{args.version} is now champion")


def cmd_rollback(args):
    from . import registry
    from .config import load_config

    name = load_config(args.params).registry.model_name
    version = registry.rollback(name, who=args.who, why=args.why, to_version=args.to_version)
    print(f"{name}: champion rolled back to v{version}")


def cmd_models(args):
    from . import registry
    from .config import load_config

    name = load_config(args.params).registry.model_name
    rows = registry.describe(name)
    if not rows:
        print(f"no versions of {name} registered yet (run `dvc repro`)")
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


def cmd_mlflow_server(args):
    from . import registry
    registry.serve(args.port)


def cmd_tag(args):
    """Tag a text file (or stdin) with the champion, or with a local adapter directory."""
    import pandas as pd

    from . import registry
    from .config import load_config

    cfg = load_config(args.params)
    text = Path(args.file).read_text() if args.file != "-" else sys.stdin.read()
    model, version = registry.load_champion(cfg.registry.model_name)
    result = model.predict(pd.DataFrame({"text": [text]}), params={"top_n": args.top_n})[0]
    print(json.dumps({"model": f"{cfg.registry.model_name} v{version}", "keywords": result},
                     ensure_ascii=False, indent=2))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tagflow", description=__doc__)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("fetch", help="obtain the thesaurus dump: official URL, else a mirror directory")
    s.add_argument("--mirror", help="directory holding a mirror (e.g. ../shared/data)")
    s.add_argument("--force", action="store_true", help="fetch even if the dump is present")
    s.set_defaults(func=cmd_fetch)

    for name, help in [("thesaurus", "parse the SKOS dump into the concept table (+ contract)"),
                       ("synth", "generate the synthetic SFT splits with the teacher LLM"),
                       ("validate", "run the data contracts on the splits (Great Expectations)"),
                       ("train-sft", "fine-tune the tagger (TRL SFT + LoRA)"),
                       ("evaluate", "score the tagger on the test split"),
                       ("register", "log the model to MLflow, register it and apply the F1 gate")]:
        sub.add_parser(name, help=help).set_defaults(func=_stage(name.replace("-", "_")))

    s = sub.add_parser("profile", help="switch the active profile in params.yaml")
    s.add_argument("name", help="smoke | cpu | gpu")
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("promote", help="make a registered version champion by hand")
    s.add_argument("--version", required=True)
    s.add_argument("--why", required=True, help="reason, recorded on the version")
    s.add_argument("--who", default=getpass.getuser(), help="recorded on the version (default: you)")
    s.set_defaults(func=cmd_promote)

    s = sub.add_parser("rollback", help="give the champion alias back to the previous champion")
    s.add_argument("--why", required=True)
    s.add_argument("--who", default=getpass.getuser())
    s.add_argument("--to-version", help="roll back to this version instead")
    s.set_defaults(func=cmd_rollback)

    sub.add_parser("models", help="list registered versions, aliases and gate decisions").set_defaults(func=cmd_models)

    s = sub.add_parser("mlflow-server", help="start the MLflow UI/server on 127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.set_defaults(func=cmd_mlflow_server)

    s = sub.add_parser("tag", help="tag a text file (or - for stdin) with the champion model")
    s.add_argument("file")
    s.add_argument("--top-n", type=int, default=10)
    s.set_defaults(func=cmd_tag)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .config import ConfigError
    from .contracts import ContractError
    from .fetch import FetchError
    from .tagger import EmptyDocumentError
    from .thesaurus import ThesaurusError

    try:
        args.func(args)
    except ContractError as exc:
        # failures were already printed by the contracts module
        print(f"tagflow {args.command}: data contract violated; see "
              f"{getattr(exc.report, 'html_path', 'the report')}", file=sys.stderr)
        return 1
    except (ConfigError, ThesaurusError, EmptyDocumentError, FetchError, LookupError, FileNotFoundError,
            ValueError) as exc:
        print(f"tagflow {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
