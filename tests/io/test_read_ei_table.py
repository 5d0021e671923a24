"""``read_ei_table``: a ``collect`` table read in Python carries its sidecars (provenance and
region names) in ``attrs``, so charts and statistics see what ``charts``/``stats`` see.

One collect of two tiny real fits of a 10-region atlas (a few seconds); the statistics use a
simulated one-hemisphere table, compared with ``stats sex`` run on the same file.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import (
    provenance_path,
    read_ei_table,
    read_regions_sidecar,
    read_table,
    regions_path,
)
from delssome_norms.io.ei_table import PROVENANCE_ATTR, regions_frame
from delssome_norms.io.regions import regions_sha256

N = 10
NETWORKS = ("Vis", "SomMot", "DorsAttn", "Limbic", "Default")
NAMES = [f"7Networks_{h}_{net}" for h in ("LH", "RH") for net in NETWORKS]
RH = list(DK68_REGIONS[34:])
FAST = dict(
    generations=2, popsize=8, mu=2, n_dup=1, dt_train=0.005, dt_val=0.005, dt_test=0.005,
    burn_in=1.44, fcd_window=5, warmup_steps=50, test_top_k=2, seed=3, interval=False,
)  # fmt: skip


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _subject(seed: int) -> dict[str, object]:
    """FC, FCD-CDF, SC and maps of the toy atlas, labelled by name, SC and maps in reverse order."""
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((40, N)) + 0.6 * rng.standard_normal((40, 1)) * np.linspace(0.5, 1.5, N)
    cdf = np.cumsum(np.full(10000, 1.0))
    sc = np.random.default_rng(1).random((N, N)) ** 2
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    x = np.linspace(-1, 1, N)
    rev = NAMES[::-1]
    return {
        "fc": pd.DataFrame(np.corrcoef(ts.T), index=NAMES, columns=NAMES),
        "fcd_cdf": cdf / cdf[-1],
        "sc": pd.DataFrame(sc[::-1, ::-1], index=rev, columns=rev),
        "myelin": pd.Series((1.6 - 0.2 * x)[::-1], index=rev),
        "gradient": pd.Series(((x - x.mean()) / x.std())[::-1], index=rev),
    }


@pytest.fixture(scope="module")
def collected(tmp_path_factory) -> Path:
    """A folder with ``table.csv`` and ``tablepq.parquet`` collected from two real tiny fits."""
    from delssome_norms.fit import collect
    from delssome_norms.pipeline import EIEstimator

    tmp = tmp_path_factory.mktemp("collected")
    for sid, seed in (("sub-a", 0), ("sub-b", 2)):
        est = EIEstimator(**FAST, out_dir=tmp / "fits" / sid)
        _quiet(est.fit, **_subject(seed), tr=0.72, scan_length=28.8, subject_id=sid)
    demo = tmp / "demo.csv"
    people = {"subject_id": ["sub-a", "sub-b"], "age_in_years": [30, 40], "sex": ["F", "M"]}
    pd.DataFrame(people).to_csv(demo, index=False)
    for name in ("table.csv", "tablepq.parquet"):
        _quiet(collect, tmp / "fits", demo, tmp / name)
    return tmp


@pytest.mark.parametrize("name", ["table.csv", "tablepq.parquet"])
def test_a_collected_table_carries_its_provenance_and_region_names(collected: Path, name: str) -> None:
    path = collected / name
    table = read_ei_table(path)
    sidecar = json.loads(provenance_path(path).read_text())
    prov = table.attrs[PROVENANCE_ATTR]
    assert prov["atlas"]["regions"] == NAMES  # the fits' atlas, not DK68 or numbers
    assert prov["pipeline"] == sidecar["pipeline"]  # what charts compare
    assert prov["pipeline"]["regions_sha256"] == regions_sha256(NAMES)
    assert list(pd.read_csv(regions_path(path))["region"]) == NAMES
    # the rows are those of the file
    plain = read_table(path)
    pd.testing.assert_frame_equal(table, plain)
    assert plain.attrs == {}


def test_a_chart_compares_the_pipeline_of_a_read_table(collected: Path) -> None:
    from delssome_norms.norms import load_reference_chart

    chart = load_reference_chart()  # DK68: the 10-region table is refused either way, but ...
    with pytest.raises(InvalidInputError, match="n_regions is 10") as plain:
        _quiet(chart.score, pd.read_csv(collected / "table.csv"))
    with pytest.raises(InvalidInputError, match="n_regions is 10") as read:
        _quiet(chart.score, read_ei_table(collected / "table.csv"))
    # ... only the table read with its sidecars is compared on atlas and region names
    assert "regions_sha256" not in str(plain.value)
    assert "atlas, regions_sha256" in str(read.value)


def test_an_edited_sidecar_naming_other_regions_is_used_with_a_warning(
    collected: Path, tmp_path: Path
) -> None:
    path = tmp_path / "table.csv"  # the sidecar records the table's name
    path.write_bytes((collected / "table.csv").read_bytes())
    provenance_path(path).write_bytes(provenance_path(collected / "table.csv").read_bytes())
    renamed = [f"parcel_{k}" for k in range(N)]
    regions_frame(renamed).to_csv(regions_path(path), index=False)
    with pytest.warns(InputWarning, match="other regions than the table's provenance"):
        table = read_ei_table(path)
    prov = table.attrs[PROVENANCE_ATTR]
    assert prov["atlas"]["regions"] == renamed
    assert prov["pipeline"]["regions_sha256"] == regions_sha256(renamed)
    # a regions.csv naming fewer regions than the table has columns belongs to another table
    regions_frame(renamed[:4]).to_csv(regions_path(path), index=False)
    short = r"table\.regions\.csv: names 4 regions, but .*ei_ratio_roi_9"
    with pytest.raises(InvalidInputError, match=short):
        _quiet(read_ei_table, path)


def _rh_file(tmp: Path, *, sidecar: bool) -> Path:
    """A 34-column table of the right hemisphere (DK68 regions 34..67 as ei_ratio_roi_0..33)."""
    rng = np.random.default_rng(4)
    n = 120
    age = rng.uniform(5, 90, n)
    rois = 1.2 - 0.003 * age[:, None] + 0.05 * rng.standard_normal((n, 34))
    rois[: n // 2, 2] += 0.08  # the first half are female: a difference in region 2 only
    table = pd.DataFrame(
        {
            "subject_id": [f"sub-{i:03d}" for i in range(n)],
            "age_in_years": age,
            "sex": ["female"] * (n // 2) + ["male"] * (n - n // 2),
            "site": [f"s{i % 2}" for i in range(n)],
        }
    )
    regional = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{k}" for k in range(34)])
    table = pd.concat([table, regional], axis=1)
    table["ei_ratio_mean"] = rois.mean(axis=1)
    path = tmp / "rh.csv"
    table.to_csv(path, index=False)
    if sidecar:
        regions_frame(RH).to_csv(regions_path(path), index=False)
    return path


def test_statistics_of_a_read_table_name_regions_as_stats_sex_does(tmp_path: Path) -> None:
    from delssome_norms.cli.main import main
    from delssome_norms.stats import sex_difference_tests

    path = _rh_file(tmp_path, sidecar=True)
    targets = ["ei_ratio_mean", "ei_ratio_roi_2"]
    argv = ["stats", "sex", "--table", str(path), "--targets", ",".join(targets), "--n-boot", "0"]
    assert _quiet(main, [*argv, "--no-figures", "--out-dir", str(tmp_path / "cli")]) == 0
    cli = pd.read_csv(tmp_path / "cli" / "sex_difference_tests.csv")
    py = _quiet(sex_difference_tests, read_ei_table(path), targets)
    assert set(py["region"].dropna()) == {RH[2]} == set(cli["region"].dropna())  # rh_..., not lh_
    # the table alone (pd.read_csv) names nothing: 34 numbered columns are not DK68's first 34
    bare = _quiet(sex_difference_tests, pd.read_csv(path), targets)
    assert bare["region"].isna().all()


def test_a_table_without_sidecars_reads_as_itself(tmp_path: Path) -> None:
    path = _rh_file(tmp_path, sidecar=False)
    table = read_ei_table(path)
    assert table.attrs == {}
    pd.testing.assert_frame_equal(table, read_table(path))


def test_a_damaged_regions_sidecar_is_named(tmp_path: Path) -> None:
    path = _rh_file(tmp_path, sidecar=False)
    regions_path(path).write_text("column,region\nei_ratio_roi_0,a\nei_ratio_roi_0,b\n")
    with pytest.raises(InvalidInputError, match=r"rh\.regions\.csv: should list ei_ratio_roi_0"):
        read_ei_table(path)
    regions_path(path).write_text("name,label\nx,y\n")
    with pytest.raises(InvalidInputError, match=r"rh\.regions\.csv: is not a regions sidecar"):
        read_regions_sidecar(regions_path(path))
    regions_path(path).write_text("column,region\nei_ratio_roi_0, \n")
    with pytest.raises(InvalidInputError, match="empty region name"):
        read_regions_sidecar(regions_path(path))


def test_collect_refuses_to_replace_the_sidecars_of_another_table(collected: Path) -> None:
    from delssome_norms.fit import collect

    before = provenance_path(collected / "table.csv").read_bytes()
    # table.parquet would write table.provenance.json and table.regions.csv: table.csv's
    with pytest.raises(InvalidInputError, match=r"table\.parquet: its sidecars .* those of table\.csv"):
        _quiet(collect, collected / "fits", collected / "demo.csv", collected / "table.parquet")
    assert not (collected / "table.parquet").exists()
    assert provenance_path(collected / "table.csv").read_bytes() == before
    # the same table collected again replaces its own sidecars
    _quiet(collect, collected / "fits", collected / "demo.csv", collected / "table.csv")
    assert json.loads(provenance_path(collected / "table.csv").read_text())["table"] == "table.csv"


def test_a_collect_stopped_midway_leaves_the_earlier_table_and_sidecars(
    collected: Path, monkeypatch
) -> None:
    import importlib

    collect_module = importlib.import_module("delssome_norms.fit.collect")  # not fit.collect()

    files = [collected / "table.csv", regions_path(collected / "table.csv")]
    files.append(provenance_path(collected / "table.csv"))
    before = {p: p.read_bytes() for p in files}
    listing = sorted(p.name for p in collected.iterdir())
    real = collect_module.write_table

    def stopped_at_the_regions(frame, path):
        if str(path).endswith(".regions.csv"):
            raise KeyboardInterrupt  # Ctrl-C after the new table was written (staged)
        return real(frame, path)

    monkeypatch.setattr(collect_module, "write_table", stopped_at_the_regions)
    demo = pd.read_csv(collected / "demo.csv")
    demo.loc[0, "age_in_years"] = 31  # a new table: other rows than the earlier one
    demo.to_csv(collected / "demo2.csv", index=False)
    with pytest.raises(KeyboardInterrupt):
        _quiet(collect_module.collect, collected / "fits", collected / "demo2.csv", files[0])
    (collected / "demo2.csv").unlink()
    assert {p: p.read_bytes() for p in files} == before  # never the new table beside old names
    assert sorted(p.name for p in collected.iterdir()) == listing  # no staged files left
