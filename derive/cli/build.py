"""``derive build``: derive every cell and activation, regenerate the kernels, render the
pages and plots (``derive.docs``), and build the MkDocs site.

Generated Markdown and ``nav.yml`` are committed (a change of derivation shows in review);
the slow measurements (``derive/docs/data/measured``, each stored with a digest of its sources)
are committed too, so a fresh clone does not measure them again; plots (``site/plots``) and the
HTML (``build/html``) are not. Every generated file carries ``MARK`` on its first line; a file without it is never
overwritten (an empty one is: an interrupted older version may have left it). Each file is
written to a temporary name and renamed over the old one (``fileio.write_atomic``), so an
interrupted build leaves whole files. ``--check`` renders the committed files in memory,
compares text and exits 1 naming each that differs; it never imports the committed kernels:
while the pages are made, ``derive.kernels.<name>`` is the module compiled from the text
just rendered (``use_fresh_kernels``).

The HTML is built into a temporary directory next to the site directory and swapped in at
the end, so a failed or interrupted build leaves the previous site whole; MkDocs empties
its ``site_dir``, so a ``--site-dir`` that is not empty must carry ``SITE_MARKER`` (written
by an earlier build). One build at a time per checkout: ``build/.lock`` (``flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import jinja2
from threadpoolctl import threadpool_limits

from derive.symbolic import bptt, spec
from derive import fileio
from derive.errors import DeriveError
from derive import activations
from derive.cli import buildcache, split, stale
from derive.cli.progress import Progress
from derive.codegen import compiledcheck, npcode, selfcheck
from derive.codegen.selfcheck import module_from_source
from derive.docs import pages as site
from derive.docs.katex import split_math


def site_tasks(root: Path) -> list[tuple[str, Path, Callable[[], str], bool]]:
    """``(label, path, make text, committed)`` for every generated file of the site: the
    pages and nav.yml (committed), the plots (rebuilt, git-ignored)."""
    site.MEASURED_DIR = root / "derive" / "docs" / "data" / "measured"
    env = site.environment(root / "templates")
    all_pages = site.pages()
    tasks = [(p.path, root / "site" / p.path, lambda p=p: site.render_page(env, p), True) for p in all_pages]
    tasks.append(("nav.yml", root / "nav.yml", lambda: site.nav_yaml(all_pages), True))
    tasks += [(p.path, root / "site" / p.path, p.make, False) for p in site.plot_table()]
    return tasks


MARK = buildcache.MARK  # on the first line of every file derive writes
SITE_MARKER = ".derive-site"  # in a site directory derive built (and may therefore empty)


def kernel_names(cells=None) -> list[str]:
    """The kernel modules: the activations and every built-in cell, or only ``cells``."""
    return ["activations", *spec.builtin_names()] if cells is None else list(cells)


#: the compiled (numba) kernels' directory inside a kernel directory
COMPILED = "compiled"


def render_kernels(directory: Path, cells=None) -> dict[Path, str]:
    """``{directory/<name>.py: text}`` of the generated kernel modules (``kernel_names``), and
    ``{directory/compiled/<name>.py: text}`` of each cell's compiled backend where the compiled
    emitter can express the cell (``compiledcheck.CompiledLimit`` otherwise: that cell has none)."""
    out = {}
    for name in kernel_names(cells):
        if name == "activations":
            out[directory / f"{name}.py"] = npcode.render_module(npcode.stanzas())
            continue
        d = bptt.derive(spec.load(name))
        label = f"derive/cells/{name}.toml"
        out[directory / f"{name}.py"] = selfcheck.verified_kernel(d, label)[0]
        try:
            out[directory / COMPILED / f"{name}.py"] = compiledcheck.verified_compiled(d, label)
        except compiledcheck.CompiledLimit:
            pass
    return out


def use_fresh_kernels(kernels: dict[Path, str]) -> None:
    """Make ``derive.kernels.<name>`` the module compiled from the text just rendered, so
    the pages' figures and plots never import a committed module (stale, empty or
    half-written). A module imported already (the catalogue imports the activations at
    start-up) gets the fresh definitions in place."""
    from derive import kernels as package

    for path, source in kernels.items():
        if path.parent.name == COMPILED:  # the pages read the NumPy kernels only
            continue
        fresh = module_from_source(source, path.stem, str(path))
        loaded = sys.modules.get(f"{package.__name__}.{path.stem}")
        if loaded is not None:
            loaded.__dict__.update({k: v for k, v in vars(fresh).items() if not k.startswith("__")})
        else:
            sys.modules[f"{package.__name__}.{path.stem}"] = fresh
            setattr(package, path.stem, fresh)


def refuse_foreign(paths) -> None:
    """A DeriveError naming the first file in the way: a non-empty file without derive's
    header, or anything that is not a regular file."""
    for path in sorted(paths):
        line = fileio.first_line(path)
        if line and MARK.encode() not in line:
            raise DeriveError(f"{path} was not generated by derive (no header); refusing to overwrite it")


def write_pages(pages: dict[Path, str]) -> list[Path]:
    """Write the files that changed, each atomically; refuse (writing nothing) if any
    target is in the way (``refuse_foreign``)."""
    refuse_foreign(pages)
    changed = []
    for path, text in sorted(pages.items()):
        if fileio.read_bytes(path) == text.encode("utf-8"):
            continue
        fileio.write_atomic(path, text)
        changed.append(path)
    return changed


def generate(root: Path, committed_only: bool = False,
             estimates: dict[str, float] | None = None) -> tuple[dict[Path, str], dict[Path, str]]:
    """``(committed files, rebuilt files)``: pages, nav.yml and kernels; plots. Unless
    ``committed_only`` (the --check mode, which writes nothing), first refuses if a target
    exists without derive's header, before any work is done. On two cores the activations are made
    in a second process (``split``). ``generate.seconds`` is what each file took."""
    tasks = [t for t in site_tasks(root) if t[3] or not committed_only]
    kernel_dir = root / "derive" / "kernels"
    if not committed_only:
        refuse_foreign([path for _, path, _, _ in tasks] + [kernel_dir / f"{n}.py" for n in kernel_names()]
                       + [kernel_dir / COMPILED / f"{n}.py" for n in spec.builtin_names()])
    second = None
    if split.available() and os.environ.get("DERIVE_JOBS") != "1":
        theirs = [t for t in tasks if split.is_activation_task(t[0])]
        tasks = [t for t in tasks if not split.is_activation_task(t[0])]
        second = split.Second(lambda: _activations_first(kernel_dir), lambda: _made(theirs, None) + (
            dict(site.MEASURED), dict(site.REMEASURED)))
        second.start()
    plots = [t for t in tasks if not t[3]]  # they read no activation: made while the second process works
    pages = [t for t in tasks if t[3]]
    steps = [("kernels", "derive/kernels")] + [("plots", t[0]) for t in plots] + [("pages", t[0]) for t in pages]
    progress = Progress(steps, estimates)
    limits = threadpool_limits(1) if second is not None else contextlib.nullcontext()  # a core per process
    committed, rebuilt, seconds = {}, {}, {}
    try:
        with limits:
            progress.begin(0)
            t0 = time.perf_counter()
            kernels = render_kernels(kernel_dir, None if second is None else spec.builtin_names())
            use_fresh_kernels(kernels)
            progress.files["kernels"] = len(kernels) + (second is not None)
            _collect((kernels, {}, {"derive/kernels": time.perf_counter() - t0}), committed, rebuilt, seconds)
            progress.end(0, seconds["derive/kernels"])
            _collect(_made(plots, progress), committed, rebuilt, seconds)
            if second is not None:  # the pages may read the activation kernels and the activations' rows
                activation_kernels, rows = second.first()
                use_fresh_kernels(activation_kernels)
                site.ROWS["rows"] = rows
                committed.update(activation_kernels)
            _collect(_made(pages, progress, start=1 + len(plots)), committed, rebuilt, seconds)
            if second is not None:
                (*theirs, measured, remeasured), waited = second.result()
                _collect(theirs, committed, rebuilt, seconds)
                site.MEASURED.update(measured)
                site.REMEASURED.update(remeasured)
                progress.note(f"activations: {len(theirs[0]) + len(theirs[1])} files in a second process "
                              f"({sum(theirs[2].values()):.1f}s; {waited:.1f}s waited for)")
    finally:
        progress.close()
        if second is not None:
            second.stop()
    generate.seconds = seconds
    generate.slowest = sorted(seconds.items(), key=lambda kv: -kv[1])[:3]
    committed.update(site.MEASURED)
    generate.remeasured = dict(site.REMEASURED)
    return committed, rebuilt


def _activations_first(kernel_dir: Path) -> tuple[dict[Path, str], list]:
    """The second process's first answer: the activation kernel module (its own pages read it) and the
    activations' summary rows (the first process's pages read them)."""
    kernels = render_kernels(kernel_dir, ["activations"])
    use_fresh_kernels(kernels)
    return kernels, site.activation_rows()


def _collect(made, committed: dict, rebuilt: dict, seconds: dict) -> None:
    """Add one ``(committed, rebuilt, seconds)`` triple to the build's."""
    committed.update(made[0])
    rebuilt.update(made[1])
    seconds.update(made[2])


def _made(tasks, progress: Progress | None, start: int = 1) -> tuple[dict[Path, str], dict[Path, str], dict[str, float]]:
    """Make each task's file: ``(committed, rebuilt, seconds)``; a failure names the file. ``start``: the
    first task's index among the progress display's steps."""
    committed, rebuilt, seconds = {}, {}, {}
    for index, (label, path, make, keep) in enumerate(tasks, start=start):
        if progress is not None:
            progress.begin(index)
        t0 = time.perf_counter()
        try:
            (committed if keep else rebuilt)[path] = make()
        except DeriveError as e:
            raise DeriveError(f"while generating {label}: {e}") from None
        except jinja2.TemplateError as e:
            where = f"{getattr(e, 'filename', None) or 'templates'}:{getattr(e, 'lineno', None) or 1}"
            raise DeriveError(f"{where}: template error: {e.message}") from None
        seconds[label] = time.perf_counter() - t0
        if progress is not None:
            progress.end(index, seconds[label])
    return committed, rebuilt, seconds


def _cmd_build(args) -> int:
    root = Path(args.root).resolve()
    if not (root / "templates").is_dir() or not (root / "mkdocs.yml").is_file():
        raise DeriveError(f"{root} is not a derive checkout (no templates/ or mkdocs.yml); use --root")
    if args.check:
        return stale.check(root, lambda: generate(root, committed_only=True)[0], force=args.force)
    html = site_dir(root, args.site_dir)
    with build_lock(root):
        t0 = time.perf_counter()
        _write_site_sources(root, force=args.force)
        if not args.no_html and not args.serve:
            t1 = time.perf_counter()
            build_html(root, html)
            size = sum(f.stat().st_size for f in html.rglob("*") if f.is_file())
            print(f"site built in {html} ({size / 1e6:.1f} MB, KaTeX rendered at build time) in "
                  f"{time.perf_counter() - t1:.1f}s; total {time.perf_counter() - t0:.1f}s")
    if args.serve and not args.no_html:
        _run_mkdocs(root, ["serve"])
    return 0


def _write_site_sources(root: Path, force: bool = False) -> None:
    """Generate and write the pages, nav.yml, kernels and plots, unless the last build's cache shows
    that nothing they depend on changed (``buildcache``); print what was done and why."""
    t0 = time.perf_counter()
    inputs = buildcache.digest(root)
    reusable, why, count = (False, "--force", 0) if force else buildcache.unchanged(root, inputs)
    if reusable:
        print(f"nothing to derive: the inputs and all {count} generated files are as the last build left them "
              f"({buildcache.CACHE.as_posix()}; {time.perf_counter() - t0:.1f}s)")
        return
    repaired = None if force else _repair(root, inputs)
    if repaired:
        named = ", ".join(repaired[:5]) + (f" and {len(repaired) - 5} more" if len(repaired) > 5 else "")
        print(f"repaired {len(repaired)} file(s) the last build wrote, the inputs being the ones it saw: "
              f"{named} ({time.perf_counter() - t0:.1f}s); nothing else to derive")
        return
    print(f"deriving everything: {why}", flush=True)
    committed, rebuilt = generate(root, estimates=buildcache.seconds(root))
    changed = write_pages({**committed, **rebuilt})
    buildcache.record(root, inputs, {**committed, **rebuilt}, generate.seconds, set(committed))
    md = [text for path, text in committed.items() if path.suffix == ".md"]
    formulas = sum(len(split_math(text)[1]) for text in md)
    print(f"derived {len(spec.builtin_names())} cells and {len(_activation_names())} activations: "
          f"{len(md)} pages, {formulas} formulas, {len(rebuilt)} plots, {len(committed) - len(md) - len(site.MEASURED) - 1} kernels; "
          f"{sum(p in committed for p in changed)} of {len(committed)} committed files changed, "
          f"{sum(p in rebuilt for p in changed)} of {len(rebuilt)} plots (not committed) written "
          f"({time.perf_counter() - t0:.1f}s; "
          "slowest: " + ", ".join(f"{label} {s:.1f}s" for label, s in generate.slowest) + ")")
    again = generate.remeasured
    print(f"measurements: {len(site.MEASURED) - len(again)} of {len(site.MEASURED)} reused (derive/docs/data/measured)"
          + ("; measured again: " + ", ".join(f"{k} ({why})" for k, why in sorted(again.items())) if again else ""))


def _repair(root: Path, inputs: str) -> list[str] | None:
    """When the inputs are the ones the last build saw and only some of the files it wrote are not the
    bytes it recorded (deleted, emptied by an interrupted write, edited), make just those again: a kernel
    module from its cell, a page, nav.yml or a plot from its task. The files repaired; None (derive
    everything) without such a build, when a measurement is stale, or when a file made again is not the
    bytes that build wrote."""
    digests = buildcache.recorded(root, inputs)
    if digests is None:
        return None
    bad = buildcache.stale_against(root, digests)
    tasks = {path.relative_to(root).as_posix(): make for _, path, make, _ in site_tasks(root)}
    kernel_dir = root / "derive" / "kernels"
    kernel_dirs = {kernel_dir.relative_to(root).as_posix(), (kernel_dir / COMPILED).relative_to(root).as_posix()}
    kernels = [rel for rel in bad if Path(rel).parent.as_posix() in kernel_dirs]
    if not bad or any(rel not in tasks and rel not in kernels for rel in bad):
        return None
    cells = list(dict.fromkeys(Path(rel).stem for rel in kernels))
    refuse_foreign([root / rel for rel in bad])  # before any work, as a full build does
    made = {path: text for path, text in render_kernels(kernel_dir, cells).items()
            if path.relative_to(root).as_posix() in bad} if cells else {}
    use_fresh_kernels(made)
    made.update({root / rel: tasks[rel]() for rel in bad if rel in tasks})
    if any(buildcache.sha(text) != digests[path.relative_to(root).as_posix()] for path, text in made.items()):
        return None
    write_pages(made)
    return bad


@contextmanager
def build_lock(root: Path):
    """Hold ``build/.lock`` for one build; a DeriveError if another build holds it. The
    kernel releases a ``flock`` when its process dies, so a crashed build never blocks."""
    path = root / "build" / ".lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise DeriveError(f"cannot create the lock file {path}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeriveError(f"another derive build is running (lock file {path}); "
                              "wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def site_dir(root: Path, given: str | None) -> Path:
    """Where the HTML goes: build/html (derive's own), or ``--site-dir`` after
    ``check_site_dir``."""
    if not given:
        return root / "build" / "html"
    html = Path(given).resolve()
    check_site_dir(html, root)
    return html


def check_site_dir(html: Path, root: Path) -> None:
    """Refuse a site directory whose contents a build would replace but derive did not
    make: a non-empty directory without ``SITE_MARKER``, a file, the checkout itself."""
    if root.is_relative_to(html):
        raise DeriveError(f"--site-dir {html} holds the checkout {root}; name a directory of its own")
    try:
        if not html.exists():
            return
        if not html.is_dir():
            raise DeriveError(f"--site-dir {html} is not a directory")
        if (html / SITE_MARKER).is_file() or not any(html.iterdir()):
            return
    except OSError as e:
        raise DeriveError(f"cannot read --site-dir {html}: {e.strerror}") from None
    raise DeriveError(f"--site-dir {html} is not empty and was not built by derive (no {SITE_MARKER}); "
                      "refusing to replace its contents: name a new or empty directory")


def build_html(root: Path, html: Path) -> None:
    """MkDocs into a fresh directory beside ``html`` (the only one it empties), then
    swapped in: an interrupted or failed build leaves the previous site as it was."""
    tmp = html.with_name(f".{html.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            tmp.mkdir(parents=True)
        except OSError as e:
            raise DeriveError(f"cannot create {tmp}: {e.strerror}") from None
        _run_mkdocs(root, ["build", "--quiet", "--site-dir", str(tmp)])
        fileio.write_atomic(tmp / SITE_MARKER, f"{MARK}: this directory is replaced by each build\n")
        _swap_in(tmp, html)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(new: Path, html: Path) -> None:
    """Rename ``new`` to ``html``, the old ``html`` out of the way first (removed after)."""
    old = html.with_name(f".{html.name}.{os.getpid()}.{secrets.token_hex(4)}.old")
    try:
        if html.exists():
            os.replace(html, old)
        try:
            os.replace(new, html)
        except OSError:
            if old.exists():
                os.replace(old, html)
            raise
    except OSError as e:
        raise DeriveError(f"cannot move the new site to {html}: {e.strerror}") from None
    shutil.rmtree(old, ignore_errors=True)


def _run_mkdocs(root: Path, args: list[str]) -> None:
    """``mkdocs ARGS`` on the checkout's mkdocs.yml. A build runs in a session of its own,
    so Ctrl-C reaches derive only (which stops it), not MkDocs and the KaTeX renderer."""
    cmd = [sys.executable, "-m", "mkdocs", args[0], "--strict", "-f", str(root / "mkdocs.yml"), *args[1:]]
    result = subprocess.run(cmd, cwd=root, env=_mkdocs_env(root), start_new_session=args[0] == "build")
    if result.returncode:
        raise DeriveError("mkdocs failed (its messages are above)")


def _mkdocs_env(root: Path) -> dict:
    """The environment for MkDocs: the sitemap's dates come from SOURCE_DATE_EPOCH (the last
    commit's time in a git checkout), so two builds of one commit are byte-identical."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's notice about its successor
    if "SOURCE_DATE_EPOCH" not in env:
        try:
            stamp = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=root, capture_output=True,
                                   text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            stamp = ""
        env["SOURCE_DATE_EPOCH"] = stamp if stamp.isdigit() else "0"
    return env


def _activation_names():
    return list(activations.REGISTRY)
