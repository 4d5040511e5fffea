"""make test-qgis's host side: when it runs, and how a root's pytest report becomes the printed counts."""
from scripts import qgis_versions


def test_without_root_it_says_why_it_skips(monkeypatch):
    monkeypatch.setattr(qgis_versions.os, "geteuid", lambda: 1000)
    assert "needs root" in qgis_versions.skip_reason()


def test_the_counts_come_from_the_junit_report_and_a_missing_report_is_a_failure(tmp_path):
    (tmp_path / "fers").mkdir()
    assert qgis_versions.summary_counts(str(tmp_path), 2) == {"passed": 0, "failed": 1, "skipped": 0}
    (tmp_path / "fers" / "report.xml").write_text(
        '<testsuites><testsuite tests="10" failures="1" errors="1" skipped="3"/></testsuites>')
    assert qgis_versions.summary_counts(str(tmp_path), 1) == {"passed": 5, "failed": 2, "skipped": 3}
