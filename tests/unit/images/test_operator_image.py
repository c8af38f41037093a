"""The container images, checked statically (the local cluster builds them for real with buildah, in minutes).

Each image is a directory with `Dockerfile`, `Dockerfile.dockerignore` and `requirements.txt`. These tests hold
what a build would otherwise catch late, or never: a COPY of a path that moved, a build context that ignores
a copied file, an entrypoint that is not a console script, a pin below pyproject's floor or a dependency left
unpinned, a USER that the restricted pod security context would refuse, and a Dockerfile that only builds
with network or only without it.
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from kubeloop.builders.security import NON_ROOT_UID
from kubeloop_cluster import images
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CHART = ROOT / "charts" / "kubeloop"

# image directory -> the pyproject extra its requirements.txt resolves (on top of the core dependencies)
IMAGES = {"trainer-image": "runtime", "operator-image": "operator"}


Instruction = images.Instruction


def instructions(dockerfile: Path) -> list[Instruction]:
    return images.instructions(dockerfile.read_text())


def of(dockerfile: Path, keyword: str) -> list[str]:
    return [i.args for i in instructions(dockerfile) if i.keyword == keyword]


def stages(dockerfile: Path) -> list[list[Instruction]]:
    """The instructions before the first FROM (global ARGs), then those of each stage, FROM included."""
    result: list[list[Instruction]] = [[]]
    for instruction in instructions(dockerfile):
        if instruction.keyword == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


def declared_args(instructions_: list[Instruction]) -> dict[str, str | None]:
    """ARG name -> default (None when it has none)."""
    result: dict[str, str | None] = {}
    for i in instructions_:
        if i.keyword == "ARG":
            name, eq, default = i.args.partition("=")
            result[name] = default if eq else None
    return result


def copy_sources(dockerfile: Path) -> list[str]:
    """Paths the build copies from the context (`COPY --from=<stage>` copies between stages: not these)."""
    sources = []
    for args in of(dockerfile, "COPY"):
        words = args.split()
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        assert len(paths) >= 2, f"COPY {args}: needs a source and a destination"
        sources += paths[:-1]
    return sources


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def user_ids(dockerfile: Path) -> tuple[int, int]:
    (user,) = of(dockerfile, "USER")
    match = re.fullmatch(r"(\d+):(\d+)", user)
    assert match, f"USER {user}: must be numeric uid:gid, so that runAsNonRoot can check it without a passwd"
    return int(match[1]), int(match[2])


def ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex over context-relative paths (`**` spans directories, `*` does not)."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: a path is out of the context when it, or a directory above it, matches; the last
    matching pattern wins, and `!pattern` takes a path back in."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = ignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(p) for p in prefixes):
            verdict = not negate
    return verdict


def ignore_patterns(image: str) -> list[str]:
    lines = (ROOT / image / "Dockerfile.dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def tracked_files(source: str) -> list[str]:
    """Files under `source` that git knows or would add (its own ignores, e.g. caches, left out)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", source],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


def pins(image: str) -> dict[str, Version]:
    result: dict[str, Version] = {}
    for line in (ROOT / image / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{image}/requirements.txt: {line} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in result, f"{image}/requirements.txt pins {name} twice"
        result[name] = Version(spec.version)
    return result


def direct_requirements(extra: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"][extra]]


def chart_operator_deployment() -> str:
    return (CHART / "templates" / "deployment.yaml").read_text()


# -- every image --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_every_copy_source_exists(image):
    sources = copy_sources(ROOT / image / "Dockerfile")
    assert f"{image}/requirements.txt" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"{image}/Dockerfile copies {source}, which is not in the repository"


@pytest.mark.parametrize("image", IMAGES)
def test_dockerignore_keeps_every_copied_file(image):
    patterns = ignore_patterns(image)
    for source in copy_sources(ROOT / image / "Dockerfile"):
        files = tracked_files(source)
        assert files, f"{source}: no tracked file"
        dropped = [f for f in files if ignored(f, patterns)]
        assert not dropped, f"{image}/Dockerfile.dockerignore drops files the build copies: {dropped[:5]}"


@pytest.mark.parametrize("image", IMAGES)
def test_two_stages_wheels_only_and_kubeloop_without_deps(image):
    dockerfile = ROOT / image / "Dockerfile"
    assert len(of(dockerfile, "FROM")) == 2
    assert any(args.startswith("--from=build ") for args in of(dockerfile, "COPY"))
    runs = of(dockerfile, "RUN")
    assert any("--only-binary=:all: -r /tmp/requirements.txt" in r for r in runs)
    (install,) = [r for r in runs if "pip install --no-deps /src" in r]
    # The smoke check runs in the same layer as the install, so a broken install fails the build.
    (entrypoint,) = of(dockerfile, "ENTRYPOINT")
    assert f"{exec_form(entrypoint)[0]} --help" in install


@pytest.mark.parametrize("image", IMAGES)
def test_entrypoint_is_a_console_script(image):
    (entrypoint,) = of(ROOT / image / "Dockerfile", "ENTRYPOINT")
    assert exec_form(entrypoint)[0] in PYPROJECT["project"]["scripts"]


@pytest.mark.parametrize("image", IMAGES)
def test_runs_as_a_fixed_non_root_user_without_writing_bytecode(image):
    dockerfile = ROOT / image / "Dockerfile"
    uid, gid = user_ids(dockerfile)
    assert uid != 0 and gid != 0
    # The user is created in the final stage (after the last FROM), with that uid.
    final = dockerfile.read_text().rsplit("\nFROM ", 1)[1]
    assert re.search(rf"useradd [^\n]*--uid {uid}\b", final)
    env = " ".join(of(dockerfile, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env.split()


@pytest.mark.parametrize("image", IMAGES)
def test_runs_as_the_uid_and_gid_of_the_pods_restricted_security_context(image):
    assert user_ids(ROOT / image / "Dockerfile") == (NON_ROOT_UID, NON_ROOT_UID) == (65532, 65532)


@pytest.mark.parametrize("image", IMAGES)
def test_no_syntax_directive(image):
    # BuildKit would pull the named frontend first, which fails without a registry; nothing here needs it.
    assert "# syntax=" not in (ROOT / image / "Dockerfile").read_text()


@pytest.mark.parametrize("image", IMAGES)
def test_pip_finds_wheels_on_pypi_unless_the_build_points_it_at_a_wheelhouse(image):
    global_args, build, final = stages(ROOT / image / "Dockerfile")
    # No default: a plain `docker build` leaves both unset and pip uses PyPI. The local cluster's hermetic build
    # sets them; pip reads PIP_* from the environment, which ARGs are in the RUN steps of their stage.
    assert declared_args(build) == {"PIP_NO_INDEX": None, "PIP_FIND_LINKS": None}
    assert not declared_args(final), (
        "build arguments of the final stage would be recorded in the image's history"
    )
    runs = " ".join(i.args for i in build if i.keyword == "RUN")
    assert "--index-url" not in runs and "--no-index" not in runs and "--find-links" not in runs
    assert declared_args(global_args) == {"PYTHON_IMAGE": "python:3.11.7-slim-bookworm"}


@pytest.mark.parametrize("image", IMAGES)
def test_every_build_argument_of_the_local_build_is_declared(image):
    argv = images.bud_arguments(ROOT / image, ROOT, "base", Path("/w"), "ref")
    passed = {argv[i + 1].partition("=")[0] for i, flag in enumerate(argv) if flag == "--build-arg"}
    global_args, build, _ = stages(ROOT / image / "Dockerfile")
    assert passed == set(declared_args(global_args)) | set(declared_args(build))


def test_the_trainer_image_carries_no_local_cluster_code():
    sources = copy_sources(ROOT / "trainer-image" / "Dockerfile")
    assert not [s for s in sources if s.startswith(("cluster", "demo"))]
    assert ignored("cluster/kubeloop_cluster/cli.py", ignore_patterns("trainer-image"))


@pytest.mark.parametrize("image, extra", IMAGES.items())
def test_requirements_pin_every_direct_dependency_at_or_above_its_floor(image, extra):
    pinned = pins(image)
    for req in direct_requirements(extra):
        name = canonicalize_name(req.name)
        assert name in pinned, f"{image}/requirements.txt does not pin {req.name} ({extra} extra or core)"
        assert req.specifier.contains(pinned[name]), (
            f"{image}/requirements.txt pins {name}=={pinned[name]}, outside pyproject's {req}"
        )


@pytest.mark.parametrize("image", IMAGES)
def test_requirements_do_not_pin_kubeloop_itself(image):
    # kubeloop is installed from the copied source with --no-deps; a pin would fetch a PyPI project instead.
    assert "kubeloop" not in pins(image)


# -- the operator image and the chart ------------------------------------------------------------------------


def test_operator_image_user_is_the_charts_run_as_user():
    template = chart_operator_deployment()
    (run_as_user,) = re.findall(r"runAsUser:\s*(\d+)", template)
    (run_as_group,) = re.findall(r"runAsGroup:\s*(\d+)", template)
    assert user_ids(ROOT / "operator-image" / "Dockerfile") == (int(run_as_user), int(run_as_group))


def test_operator_image_entrypoint_is_the_charts_command():
    (command,) = re.findall(r"command:\s*(\[.*\])", chart_operator_deployment())
    (entrypoint,) = of(ROOT / "operator-image" / "Dockerfile", "ENTRYPOINT")
    assert exec_form(entrypoint) == exec_form(command) == ["kubeloop-operator"]


def test_operator_image_exposes_the_health_and_metrics_ports():
    from kubeloop.settings import Settings

    fields = Settings.model_fields
    settings_ports = {fields["health_port"].default, fields["metrics_port"].default}
    values = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]
    chart_ports = {values["healthPort"], values["metricsPort"]}
    exposed = {int(p) for args in of(ROOT / "operator-image" / "Dockerfile", "EXPOSE") for p in args.split()}
    assert exposed == settings_ports == chart_ports == {8080, 9090}


def test_operator_requirements_carry_no_training_runtime():
    # The operator image stays small: the trainer's stack is the other image's business.
    pinned = pins("operator-image")
    for heavy in ("scikit-learn", "pandas", "pyarrow", "skops", "uvicorn", "starlette"):
        assert heavy not in pinned


# -- the helpers themselves (a wrong matcher would make the dockerignore test pass vacuously) ----------------


@pytest.mark.parametrize(
    "path, patterns, expected",
    [
        ("operator/kubeloop/main.py", ["**/__pycache__"], False),
        ("operator/kubeloop/__pycache__/main.cpython-311.pyc", ["**/__pycache__"], True),
        ("operator/kubeloop/main.py", ["operator"], True),
        ("operator/kubeloop/main.py", ["**/*.py"], True),
        ("operator/kubeloop/main.py", ["operator/*.py"], False),
        ("cluster/kubeloop_cluster/cli.py", ["cluster/tools"], False),
        ("cluster/kubeloop_cluster/cli.py", ["cluster", "!cluster/kubeloop_cluster"], False),
        ("README.md", ["*.md"], True),
    ],
)
def test_ignore_matcher(path, patterns, expected):
    assert ignored(path, patterns) is expected


def test_instruction_parser_joins_continuations(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# syntax=docker/dockerfile:1.7\nFROM a AS build\nCOPY --chmod=644 x y /dst/\n"
        "RUN one \\\n    && two\nCOPY --from=build /opt /opt\nUSER 1:2\n"
    )
    assert [i.keyword for i in instructions(dockerfile)] == ["FROM", "COPY", "RUN", "COPY", "USER"]
    assert of(dockerfile, "RUN") == ["one  && two"]
    assert copy_sources(dockerfile) == ["x", "y"]
    assert user_ids(dockerfile) == (1, 2)
