"""The project's own promises: README commands, CI script, layering."""
import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme_commands():
    text = open(os.path.join(ROOT, "README.md")).read()
    return re.findall(r"```bash\n(.*?)\n```", text, re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    cmds = _readme_commands()
    test_cmd = [c for c in cmds if "pytest" in c]
    assert len(test_cmd) == 1, "README must show exactly one test command"
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert test_cmd[0].strip() in ci


def test_readme_main_job_exists():
    main = [c for c in _readme_commands() if "demos/" in c]
    assert main, "README must show the main job command"
    script = re.search(r"(demos/\S+\.py)", main[0]).group(1)
    assert os.path.exists(os.path.join(ROOT, script))


def _imports(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield 0, a.name


def test_kernels_and_data_never_import_the_engine():
    for sub in ("kernels", "data"):
        folder = os.path.join(ROOT, "tinygrad_cnn", sub)
        for name in os.listdir(folder):
            if not name.endswith(".py"):
                continue
            for level, mod in _imports(os.path.join(folder, name)):
                bad = (level >= 2) or mod.startswith("tinygrad_cnn") and not mod.startswith(f"tinygrad_cnn.{sub}")
                assert not bad, f"tinygrad_cnn/{sub}/{name} imports {'.' * level}{mod}: {sub}/ must stay NumPy-only"


def test_engine_does_not_import_tensor():
    mods = [m for _, m in _imports(os.path.join(ROOT, "tinygrad_cnn", "engine.py"))]
    assert not any("tensor" in m or m.startswith("tinygrad_cnn") for m in mods)
