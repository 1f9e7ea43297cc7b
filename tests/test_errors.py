"""`colorfusion.errors`: one rule turns what a command returns into its exit code."""

from pathlib import Path

import pytest

from colorfusion.demo import DemoResult
from colorfusion.errors import exit_code, run_reporting_errors
from colorfusion.evaluation import EvaluationReport
from colorfusion.inference.batch import FolderReport


def demo_result(failed) -> DemoResult:
    return DemoResult(None, Path("grid.png"), [], [], [], None, "mobilenet_v2", 1.0, failed)


def test_exit_code_of_none_an_int_and_a_result_that_says_whether_it_went_well():
    assert exit_code(None) == 0
    assert exit_code(0) == 0 and exit_code(2) == 2 and exit_code(130) == 130
    assert exit_code(FolderReport(written=["a.png"])) == 0
    assert exit_code(FolderReport(failed=[("b.png", "unreadable")])) == 1
    assert exit_code(demo_result([])) == 0 and exit_code(demo_result([("c.png", "unreadable")])) == 1


def test_exit_code_of_an_evaluation_report_follows_its_failures():
    assert exit_code(EvaluationReport()) == 0
    assert exit_code(EvaluationReport(failed=[("x.png", "unreadable")])) == 1


@pytest.mark.parametrize("value", [True, False, "0", 1.0, object()])
def test_exit_code_refuses_a_value_that_says_nothing_about_success(value):
    with pytest.raises(TypeError, match="a command returns None, an exit code or a result with `ok`"):
        exit_code(value)


def test_the_catch_all_gives_a_results_exit_code_and_one_line_for_a_commands_bug(capsys):
    assert run_reporting_errors("demo", lambda: demo_result([])) == 0
    assert run_reporting_errors("demo", lambda: demo_result([("c.png", "unreadable")])) == 1
    assert run_reporting_errors("colorize", lambda: 3) == 3
    assert capsys.readouterr().err == ""
    assert run_reporting_errors("colorize", lambda: "done") == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: colorize failed: TypeError: a command returns None")


def test_what_a_user_asked_of_evaluate_and_export_is_their_error_not_the_commands(photos, tiny_model_file, tmp_path,
                                                                                    capsys, monkeypatch):
    from colorfusion import cli

    monkeypatch.setattr(cli, "import_backend_quietly", lambda training=False: None)  # tested in test_cli_startup
    model = str(tiny_model_file())
    assert cli.main(["evaluate", "--data", str(photos), "--out", str(tmp_path / "r"), "--model", model,
                     "--size", "4"]) == 1
    assert capsys.readouterr().err.strip() == "error: size must be an integer of at least 8. Received: size=4"
    assert cli.main(["export", "--model", model, "-o", str(tmp_path / "m.onnx"), "--size", "250x300"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "failed" not in err and "32" in err, err
