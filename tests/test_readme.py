"""The README runs as written: every code block is run here, or marked with why not.

This test is the single source for the README's examples (``python -m doctest
README.md`` is not used: it would read each closing fence as expected output).

* ```` ```python ```` blocks run in order in one namespace, in the test's empty
  folder: blocks with ``>>>`` as doctests (outputs compared), the others executed.
* ```` ```bash ````, ```` ```sh ```` and ```` ```console ```` blocks: each command
  (every line of a bash block, the ``$`` lines of a console block) is a ``procmem``
  command, run through the CLI's entry point; it must exit 0.
* The line just before a block may say ``<!-- not-run: REASON -->`` (installs,
  servers, data that does not ship with procmem) or ``<!-- slow: REASON -->`` (run
  in the ``slow`` lane). A block that is neither run nor marked, a fence without a
  language, or an indented code block fails the test.
"""

from __future__ import annotations

import doctest
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from procmem import Memory
from procmem.cli import main
from procmem.core.errors import EXTRA_PACKAGES, MissingExtra, UsageError

README = Path(__file__).resolve().parents[1] / "README.md"
PYPROJECT = README.parent / "pyproject.toml"
RUNNABLE = {"python", "bash", "sh", "console"}
_MARKER = re.compile(r"^<!--\s*(not-run|slow):\s*(\S.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    lang: str
    line: int  # 1-based line of the opening fence
    body: str
    marker: str | None  # "not-run" or "slow"
    reason: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text`` with the marker on the line before each."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = _MARKER.match(before.strip())
        blocks.append(Block(fence[1], i + 1, "\n".join(lines[i + 1:end]) + "\n",
                            mark[1] if mark else None, mark[2] if mark else None))
        i = end + 1
    return blocks


def indented_code_lines(text: str) -> list[int]:
    """Lines that start an indented (4-space) code block outside fences and lists."""
    found, in_fence, prev, para_start = [], False, "", ""
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("    ") and not prev.strip():
            if not re.match(r"^(\s*[-*] |\s*\d+\. |\s{2,}\S)", para_start):
                found.append(n)
        if not prev.strip():
            para_start = line
        prev = line
    return found


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def shell_commands(block: Block) -> list[str]:
    """The command lines of a shell block (console: the ``$`` lines), no comment lines."""
    out = []
    for raw in block.body.splitlines():
        line = raw.strip()
        if block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if shlex.split(line, comments=True):
            out.append(line)
    return out


def test_every_block_has_a_language_and_is_run_or_marked() -> None:
    assert BLOCKS, "no code block found in the README"
    for block in BLOCKS:
        assert block.lang, f"README.md:{block.line}: a fence without a language"
        if block.marker is None:
            assert block.lang in RUNNABLE, (
                f"README.md:{block.line}: a ```{block.lang} block is neither run nor marked "
                "<!-- not-run: REASON -->")
    assert indented_code_lines(README.read_text(encoding="utf-8")) == []


def test_the_block_parser_sees_markers_and_indented_code() -> None:
    text = ("x\n\n<!-- not-run: starts a server -->\n```bash\nprocmem serve\n```\n\n"
            "```\nplain\n```\n\ntext\n\n    indented code\n\n- item\n\n    list code\n")
    blocks = readme_blocks(text)
    assert [(b.lang, b.marker, b.reason) for b in blocks] == [
        ("bash", "not-run", "starts a server"), ("", None, None)]
    assert indented_code_lines(text) == [14]


def test_python_blocks_run_in_order() -> None:
    """Every python block, in README order, in one namespace (doctests compared)."""
    globs: dict[str, object] = {"__name__": "readme"}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    ran = 0
    for block in BLOCKS:
        if block.lang != "python" or block.marker is not None:
            continue
        if ">>>" in block.body:
            test = parser.get_doctest(block.body, globs, f"README.md:{block.line}",
                                      str(README), block.line)
            result = runner.run(test, clear_globs=False)
            globs.update(test.globs)  # DocTest copies the namespace it is given
            assert result.failed == 0, f"README.md:{block.line}: a doctest failed (above)"
        else:
            exec(compile(block.body, f"README.md:{block.line}", "exec"), globs)
        ran += 1
    assert ran >= 4


def _shell_params() -> list[object]:
    params: list[object] = []
    for block in BLOCKS:
        if block.lang not in {"bash", "sh", "console"} or block.marker == "not-run":
            continue
        marks = [pytest.mark.slow] if block.marker == "slow" else []
        params.append(pytest.param(block, id=f"line{block.line}", marks=marks))
    return params


@pytest.mark.parametrize("block", _shell_params())
def test_shell_block_runs(block: Block) -> None:
    commands = shell_commands(block)
    assert commands, f"README.md:{block.line}: an empty shell block"
    runner = CliRunner()
    for command in commands:
        words = shlex.split(command, comments=True)
        assert words[0] == "procmem", (
            f"README.md:{block.line}: only procmem commands run here; mark the block "
            f"<!-- not-run: REASON --> ({command!r})")
        result = runner.invoke(main, words[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"README.md:{block.line}: {command}\n{result.output}"


def _embedder_specs() -> list[str]:
    """The specs of the README's embedder table (first column), placeholders filled."""
    text = README.read_text(encoding="utf-8")
    table = text[text.index("**Embedders**"):]
    specs = []
    for row in re.findall(r"^\| (`[^|]+) \|", table, flags=re.M)[:20]:
        for spec in re.findall(r"`([^`]+)`", row):
            specs.append(spec.replace("MODEL_OR_PATH", "no/such-model")
                         .replace("MODEL[@BASE_URL]", "text-embedding-3-small"))
        if "none" in row:
            break
    return specs


def test_the_embedder_table_is_read() -> None:
    assert {"default", "minilm-l3", "minilm-l6", "none"} <= set(_embedder_specs())
    assert any(s.startswith("st:") for s in _embedder_specs())
    assert any(s.startswith("openai:") for s in _embedder_specs())


@pytest.mark.parametrize("spec", _embedder_specs())
def test_memory_accepts_every_spec_of_the_embedder_table(spec: str) -> None:
    try:
        mem = Memory(":memory:", embedder=spec)
    except MissingExtra as err:  # accepted, but its packages are not installed here
        assert "pip install -e '.[" in str(err)
        return
    except UsageError as err:  # st: accepted, but no such model on disk
        assert spec.startswith("st:") and "neither a directory" in str(err)
        return
    with mem:
        if spec == "none":
            assert mem.embedder is None
        elif spec.startswith("openai:"):
            assert mem.embedder is not None and mem.embedder.model_id == spec


def test_an_unknown_embedder_spec_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown embedder"):
        Memory(":memory:", embedder="word2vec")


def test_missing_extra_names_the_clone_command_and_the_packages() -> None:
    message = str(MissingExtra("the REST server", "server"))
    assert "pip install -e '.[server]'" in message and "'fastapi>=0.110'" in message
    assert "procedural-memory[" not in message
    assert "'psycopg[binary]>=3.2'" in str(MissingExtra("PostgreSQL storage", "postgres"))
    assert "no 'nosuch' extra" in str(MissingExtra("nothing", "nosuch"))
    assert "no 'mysql' extra" in str(MissingExtra("MySQL storage", "mysql"))
    assert "pip install -e '.[postgres]'" in str(MissingExtra("PostgreSQL storage", "postgres"))


def test_extra_packages_match_pyproject() -> None:
    import tomllib

    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]
    assert {name: tuple(deps) for name, deps in extras.items() if name != "test"} == \
        EXTRA_PACKAGES


def test_procmem_sample_writes_the_bundled_traces_and_their_licence(tmp_path: Path) -> None:
    from procmem.formats.samples import SAMPLE_NAME, sample_file
    from procmem.formats.traceio import read_traces

    result = CliRunner().invoke(main, ["sample", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = tmp_path / "out" / SAMPLE_NAME
    assert result.output.split() == [str(written), str(tmp_path / "out" / "LICENSE-tau-retail")]
    assert written.read_bytes() == sample_file().read_bytes()
    assert len(read_traces(written)[0]) == 160
    assert "MIT" in (tmp_path / "out" / "LICENSE-tau-retail").read_text(encoding="utf-8")
    blocked = tmp_path / "file"
    blocked.write_text("x", encoding="utf-8")
    bad = CliRunner().invoke(main, ["sample", str(blocked / "sub")])
    assert bad.exit_code == 2 and "error[usage]: cannot write the sample" in bad.output
