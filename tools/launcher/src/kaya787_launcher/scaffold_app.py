"""The files of a new app package and its first test, as `kaya787 new-service` writes them,
from the templates in templates/service/ (`$name`, `$package`, `$Class` filled in).

The package has the shape every app has (docs/adding-a-service.md): a composition root
(`main.py`) that builds adapters in the lifespan, framework-free use cases (`service.py`)
written against Protocols (`ports.py`), a pure `domain.py`, Dapr adapters and thin routes.
Its example use case keeps one text item per caller and id in the app's own state store,
behind a token-checked public route. tests/unit/test_adding_a_service.py lints, type-checks
and tests what they produce.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

TEMPLATES = Path(__file__).parent / "templates" / "service"


def _sorted_imports(*lines: str) -> str:
    """Import lines in the order ruff's isort wants them (both packages are third-party
    to tests/, so the app's may sort before or after the kit's)."""
    return "\n".join(sorted(lines, key=lambda line: line.split()[1]))


def _template(relative: str) -> Template:
    return Template((TEMPLATES / relative).read_text())


def app_files(name: str) -> dict[str, str]:
    """Relative path -> text of every new file of app `name`, its fake and its test."""
    package = f"kaya787_{name}"
    values = {
        "name": name,
        "package": package,
        "Class": name.capitalize(),
        "fake_imports": _sorted_imports(
            "from kaya787_kit.concurrency import EtagConflict, Versioned",
            f"from {package}.domain import Item",
        ),
        "test_imports": _sorted_imports(
            "from kaya787_kit.errors import NotFound",
            f"from {package}.service import ItemsService",
        ),
    }
    files = {f"apps/{name}/pyproject.toml": _template("pyproject.toml.tmpl")}
    for path in sorted((TEMPLATES / "package").glob("*.py.tmpl")):
        files[f"apps/{name}/src/{package}/{path.name.removesuffix('.tmpl')}"] = _template(
            f"package/{path.name}"
        )
    files[f"tests/fakes/{name}.py"] = _template("fake.py.tmpl")
    files[f"tests/unit/test_{name}_service.py"] = _template("test_service.py.tmpl")
    return {path: template.substitute(values) for path, template in files.items()}
