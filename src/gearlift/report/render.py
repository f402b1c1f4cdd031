"""Write the report: one self-contained HTML file (inline CSS and SVG, no script, no external
resource), its Markdown twin, and the diagram as a separate SVG for Markdown viewers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from gearlift.report.model import Report

HTML_NAME = "solution-design.html"
MD_NAME = "solution-design.md"
SVG_NAME = "architecture.svg"
PEAK_SVG_NAME = "peak.svg"
SECTION_IDS = ("summary", "architecture", "before-after", "pci", "cis", "cost", "availability", "runbooks", "findings")


@dataclass(frozen=True)
class Written:
    html: Path
    markdown: Path
    svg: Path | None


def money(value: float | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.2f}"


def signed_money(value: float | None) -> str:
    if value is None:
        return "-"
    return ("+" if value >= 0 else "-") + f"${abs(value):,.2f}"


def md_cell(value: object) -> str:
    return str(value).replace("|", "/").replace("\n", " ")


def status_class(status: str) -> str:
    return re.sub(r"[^a-z]+", "-", status.lower()).strip("-")


def _environment(autoescape: bool) -> jinja2.Environment:
    templates = resources.files("gearlift.report").joinpath("templates")
    loader = jinja2.FunctionLoader(lambda name: templates.joinpath(name).read_text(encoding="utf-8"))
    env = jinja2.Environment(
        loader=loader,
        autoescape=autoescape,  # noqa: S701 - True for HTML; the Markdown twin is not HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = money
    env.filters["signed_money"] = signed_money
    env.filters["md"] = md_cell
    env.filters["status_class"] = status_class
    return env


def render_html(report: Report) -> str:
    template = _environment(autoescape=True).get_template("report.html.j2")
    # graphviz's own SVG output, comments / prolog removed: trusted markup, embedded as is
    svg = Markup(report.svg) if report.svg else None  # noqa: S704
    # scripts/bench-peak's plot (gearlift.peak.svg): numbers and fixed labels only
    peak_svg = Markup(report.peak.svg) if report.peak.svg else None  # noqa: S704
    return template.render(r=report, svg=svg, peak_svg=peak_svg, section_ids=SECTION_IDS)


def render_markdown(report: Report, svg_name: str | None) -> str:
    template = _environment(autoescape=False).get_template("report.md.j2")
    return template.render(r=report, svg_name=svg_name)


def write(report: Report, out: Path) -> Written:
    out.mkdir(parents=True, exist_ok=True)
    svg_path = None
    if report.svg:
        svg_path = out / SVG_NAME
        svg_path.write_text(report.svg + "\n", encoding="utf-8")
    html = out / HTML_NAME
    html.write_text(render_html(report), encoding="utf-8")
    if report.peak.svg:
        (out / PEAK_SVG_NAME).write_text(report.peak.svg, encoding="utf-8")
    markdown = out / MD_NAME
    markdown.write_text(render_markdown(report, SVG_NAME if svg_path else None), encoding="utf-8")
    return Written(html, markdown, svg_path)
