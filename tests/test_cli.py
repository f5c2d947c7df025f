import json
import subprocess
import sys

from cissl_kit.cli import main


def test_cli_trains_two_methods_and_writes_a_run_folder(tmp_path, capsys):
    code = main(["train", "--method", "supervised,fixmatch", "--steps", "20", "--eval-every", "10",
                 "--threshold", "0.9", "--out", str(tmp_path), "--name", "run", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "method" in out and "supervised" in out and "fixmatch" in out and "overall" in out
    folder = tmp_path / "run"
    results = json.loads((folder / "results.json").read_text())
    assert [r["method"] for r in results] == ["supervised", "fixmatch"]
    assert results[1]["hparams"]["threshold"] == 0.9 and results[0]["config"]["steps"] == 20
    assert (folder / "curves.png").stat().st_size > 10_000
    assert (folder / "summary.csv").read_text().count("\n") == 3
    assert "step" in (folder / "history.csv").read_text().splitlines()[0]


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--imbalance-ratio", "0.5", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "imbalance_ratio must be a number in [1, inf)" in capsys.readouterr().err
    for argv, message in ((["train", "--method", "mixmatch"], "--method: unknown name 'mixmatch' (did you mean 'fixmatch'?)"),
                          (["train", "--method", "supervised", "--threshold", "0.5"], "--threshold does not apply")):
        assert main(argv + ["--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("cissl-kit: error: ") and message in err, err


def test_python_dash_m_split():
    out = subprocess.run([sys.executable, "-m", "cissl_kit", "split", "--unlabeled-profile", "reversed"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows[0][:3] == ["0", "40", "4"] and rows[-1][:3] == ["9", "2", "80"] and rows[-1][3] == "few"


def test_cli_semi_flags_reach_the_algorithm(tmp_path):
    assert main(["train", "--method", "semi", "--no-use-oheml", "--bank-slots", "16", "--bank-policy", "fifo",
                 "--steps", "10", "--eval-every", "10", "--out", str(tmp_path), "--name", "s", "--no-progress"]) == 0
    hparams = json.loads((tmp_path / "s" / "results.json").read_text())[0]["hparams"]
    assert hparams["use_oheml"] is False and hparams["bank_slots"] == 16 and hparams["bank_policy"] == "fifo"
    assert hparams["threshold"] == 0.7 and hparams["use_plce"] is True


def test_cli_checkpoints_and_resumes(tmp_path, capsys):
    base = ["train", "--method", "supervised,fixmatch", "--steps", "8", "--eval-every", "4", "--no-progress",
            "--checkpoint", str(tmp_path / "ck.pt"), "--checkpoint-every", "3", "--out", str(tmp_path)]
    assert main(base + ["--name", "first"]) == 0
    assert sorted(p.name for p in tmp_path.glob("ck-*.pt")) == ["ck-fixmatch.pt", "ck-supervised.pt"]
    assert main(base + ["--name", "resumed", "--resume"]) == 0  # finished runs: the same results again
    first, resumed = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("first", "resumed"))
    assert [r["final"]["accuracy"] for r in first] == [r["final"]["accuracy"] for r in resumed]
    capsys.readouterr()
    assert main(["train", "--method", "fixmatch", "--steps", "8", "--checkpoint", str(tmp_path / "none.pt"),
                 "--resume", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "none.pt does not exist" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err


def test_writing_figures_leaves_the_matplotlib_backend_alone(tmp_path):
    """A notebook's inline backend must survive write_run / write_figures (no switch to Agg)."""
    import matplotlib

    from cissl_kit import make_ssl_data, train
    from cissl_kit.benchmark import reference_results, write_figures
    from cissl_kit.cli import write_run

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        result = train("supervised", make_ssl_data("digits", device="cpu"), steps=4, eval_every=2, progress=False)
        write_run([result], tmp_path, "run")
        write_figures(reference_results(), tmp_path)
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    assert (tmp_path / "run" / "curves.png").stat().st_size > 10_000 and (tmp_path / "summary.png").is_file()


def test_synthetic_cifar10_smoke_run_takes_the_cifar_code_path(tmp_path, capsys):
    """A few steps of FixMatch and SeMi on WRN-28-2 at 32×32 with the CIFAR-10-LT split sizes."""
    assert main(["train", "--dataset", "synthetic-cifar10", "--method", "fixmatch,semi", "--steps", "2",
                 "--eval-every", "2", "--batch-size", "8", "--no-progress", "--out", str(tmp_path), "--name", "s"]) == 0
    out = capsys.readouterr().out
    assert "labeled counts   [1500, 899, 539" in out and "accuracy is meaningless" in out and "semi" in out
    results = json.loads((tmp_path / "s" / "results.json").read_text())
    from cissl_kit.models import default_model

    assert default_model((3, 32, 32)) == "wrn28_2"  # what model=None (the default) trains at 32×32
    assert all(r["final"]["step"] == 2 for r in results)


def test_the_quick_typo_checks_spec_is_the_parsers():
    from cissl_kit._quick_usage import load_spec
    from cissl_kit.cli import cli_spec

    # after adding a flag, a choice or a method: python -c "from cissl_kit.cli import write_cli_spec; write_cli_spec()"
    assert load_spec() == json.loads(json.dumps(cli_spec()))


TYPOS = [
    (["trian"], "invalid choice: 'trian'", "(did you mean 'train'?)"),
    (["train", "--methd", "semi"], "unrecognized arguments: --methd", "(did you mean '--method'?)"),
    (["train", "--method", "semii"], "--method: unknown name 'semii'", "(did you mean 'semi'?)"),
    (["train", "--method=fixmatch,layermach"], "--method: unknown name 'layermach'", "(did you mean 'layermatch'?)"),
    (["train", "--dataset", "mnsit"], "argument --dataset: invalid choice: 'mnsit'", "(did you mean 'mnist'?)"),
    (["benchmark", "--profiles", "consistent,revresed"], "--profiles: unknown name 'revresed'", "(did you mean 'reversed'?)"),
    (["split", "--sead", "1"], "unrecognized arguments: --sead", "(did you mean '--seed'?)"),
]


def test_a_typo_is_reported_before_pytorch_is_imported():
    # on a busy machine importing PyTorch takes 10-15 s: a mistyped name must not wait for it
    script = ("import json, sys\nfrom cissl_kit._entry import main\n"
              "codes = [main(argv) for argv in json.loads(sys.argv[1])]\n"
              "print(json.dumps([codes, 'torch' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", script, json.dumps([argv for argv, _, _ in TYPOS])],
                          capture_output=True, text=True, check=True)
    codes, torch_loaded = json.loads(done.stdout)
    assert codes == [2] * len(TYPOS) and not torch_loaded
    lines = done.stderr.splitlines()
    assert len(lines) == len(TYPOS)
    for line, (_, what, suggestion) in zip(lines, TYPOS):
        assert line.startswith("cissl-kit: error: ") and what in line and suggestion in line, line


def test_the_full_parser_says_the_same_of_each_typo(capsys):
    for argv, what, suggestion in TYPOS:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert what in err and suggestion in err, err


def test_the_quick_check_lets_through_what_the_parser_accepts():
    from cissl_kit._quick_usage import quick_usage_error
    from cissl_kit.cli import build_parser

    parser = build_parser()
    for argv in (["train", "--meth", "semi"], ["train", "--method=semi,fixmatch", "--dataset=mnist"],
                 ["train", "--no-progress", "--seed", "3", "--unlabeled-profile", "5,4,3"],
                 ["benchmark", "--profiles", "middle,head-tail", "--seeds", "0,1"], ["split", "--help"],
                 ["train", "--resume", "--dataset", "cifar10"], ["--version"], []):
        assert quick_usage_error(argv) is None, argv
        if argv and "--help" not in argv and "--version" not in argv:
            args, extra = parser.parse_known_args(argv)
            assert extra == [], argv


def test_help_says_each_commands_defaults_and_why():
    out = subprocess.run([sys.executable, "-m", "cissl_kit", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    text = " ".join(out.split())
    assert "(default fixmatch)" in text and "default to the 8×8 digits" in text and "benchmark defaults to mnist" in text
    out = subprocess.run([sys.executable, "-m", "cissl_kit", "benchmark", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "defaults to mnist" in " ".join(out.split())
