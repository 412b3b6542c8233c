"""Every shipped config validates; malformed ones are rejected naming the offending key."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from .conftest import ROOT

SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")
CONFIGS = sorted((ROOT / "config").glob("*.yaml"))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path):
    validate(yaml.safe_load(path.read_text()), SCHEMA)


def _break(cfg: dict, how: str) -> tuple[dict, str]:
    cfg = copy.deepcopy(cfg)
    if how == "wrong_type":
        cfg["baseline"]["epochs"] = "ten"
        return cfg, "['baseline']['epochs']"
    if how == "unknown_method":
        cfg["baseline"]["methods"]["sgd"]["name"] = "lion"
        return cfg, "['baseline']['methods']['sgd']['name']"
    if how == "negative_lr":
        cfg["baseline"]["methods"]["sgd"]["lr"] = -0.1
        return cfg, "['baseline']['methods']['sgd']['lr']"
    if how == "missing_key":
        del cfg["baseline"]["batch_size"]
        return cfg, "'batch_size' is a required property"
    if how == "unknown_dataset":
        cfg["data"]["datasets"].append("imagenet")
        return cfg, "['data']['datasets']"
    if how == "unknown_key":
        cfg["baseline"]["epoch"] = 3
        return cfg, "'epoch' was unexpected"
    if how == "sparsity_one":
        cfg["superposition"]["toy"]["intro"]["sparsities"].append(1.0)
        return cfg, "['superposition']['toy']['intro']['sparsities'][3]"
    if how == "negative_sparsity":
        cfg["superposition"]["penalty"]["sparsities"] = [-0.1]
        return cfg, "['superposition']['penalty']['sparsities'][0]"
    if how == "negative_lambda":
        cfg["superposition"]["penalty"]["lams"] = [0.1, -1.0]
        return cfg, "['superposition']['penalty']['lams'][1]"
    if how == "empty_grid_values":
        cfg["superposition"]["shortcut"]["grids"]["bimodal_split"]["lam"] = []
        return cfg, "['superposition']['shortcut']['grids']['bimodal_split']['lam']"
    if how == "negative_temperature":
        cfg["superposition"]["penalty"]["variants"]["bimodal_split"]["tau"] = -0.25
        return cfg, "['superposition']['penalty']['variants']['bimodal_split']['tau']"
    if how == "topk_k_zero":
        cfg["superposition"]["penalty"]["variants"]["topk"] = {"penalty": "none",
                                                              "activation": "topk", "k": 0}
        return cfg, "['superposition']['penalty']['variants']['topk']['k']"
    if how == "pareto_grid_of_one_lambda":
        cfg["superposition"]["penalty"]["lams"] = [0.1]
        return cfg, "['superposition']['penalty']['lams']"
    if how == "empty_family":
        cfg["explore"]["primary"] = []
        return cfg, "['explore']['primary']"
    if how == "contrast_without_metric":
        del cfg["continual"]["primary"][0]["metric"]
        return cfg, "'metric' is a required property"
    if how == "unknown_penalty":
        cfg["superposition"]["penalty"]["variants"]["none"]["penalty"] = "l2"
        return cfg, "['superposition']['penalty']['variants']['none']['penalty']"
    if how == "missing_erm":
        del cfg["superposition"]["shortcut"]["variants"]["erm"]
        return cfg, "'erm' is a required property"
    if how == "negative_round_size":
        cfg["active"]["loop"]["round_size"] = -5
        return cfg, "['active']['loop']['round_size']"
    if how == "unknown_acquisition":
        cfg["active"]["acquisitions"].append("uncertainty")
        return cfg, f"['active']['acquisitions'][{len(cfg['active']['acquisitions']) - 1}]"
    if how == "alignment_above_one":
        cfg["active"]["benchmarks"]["cmnist"]["train_align"] = [0.8, 1.5]
        return cfg, "['active']['benchmarks']['cmnist']['train_align'][1]"
    if how == "unknown_curriculum_method":
        cfg["active"]["curriculum"]["methods"] = ["erm", "mixup"]
        return cfg, "['active']['curriculum']['methods'][1]"
    if how == "negative_irm_weight":
        cfg["active"]["curriculum"]["irm"] = {"lam": -1.0}
        return cfg, "['active']['curriculum']['irm']['lam']"
    if how == "negative_vrex_weight":
        cfg["active"]["curriculum"]["vrex"] = {"beta": -0.5}
        return cfg, "['active']['curriculum']['vrex']['beta']"
    if how == "alfa_mix_cap_above_one":
        cfg["active"]["alfa_mix"] = {"alpha_cap": 1.5}
        return cfg, "['active']['alfa_mix']['alpha_cap']"
    if how == "negative_anneal_in_grid":
        cfg["active"]["curriculum"]["tuning"]["grids"]["irm"] = {"lam": [1.0], "anneal": [0, -5]}
        return cfg, "['active']['curriculum']['tuning']['grids']['irm']['anneal'][1]"
    if how == "alvin_sweep_alpha_zero":
        cfg["active"]["alvin_sweep"] = {"alpha": [0.0], "anchors_per_minority": [5]}
        return cfg, "['active']['alvin_sweep']['alpha'][0]"
    if how == "zero_line_search_iters":
        cfg["continual"]["line_search_iters"] = 0
        return cfg, "['continual']['line_search_iters']"
    if how == "alvin_alpha_zero":
        cfg["active"]["alvin"] = {"alpha": 0.0}
        return cfg, "['active']['alvin']['alpha']"
    if how == "k_zero":
        cfg["continual"]["k"] = 0
        return cfg, "['continual']['k']"
    if how == "negative_radius":
        cfg["continual"]["ball"]["euclidean"] = -0.1
        return cfg, "['continual']['ball']['euclidean']"
    if how == "unknown_distance":
        cfg["continual"]["ball"]["wasserstein"] = 0.1
        return cfg, "['continual']['ball']"
    if how == "unknown_controller":
        cfg["continual"]["controllers"]["names"] = ["ratio", "pid"]
        return cfg, "['continual']['controllers']['names'][1]"
    if how == "negative_rho":
        cfg["explore"]["arms"]["sam"]["rho"] = -0.05
        return cfg, "['explore']['arms']['sam']['rho']"
    if how == "zero_walk_steps":
        cfg["explore"]["arms"]["contour"]["contour"]["steps"] = 0
        return cfg, "['explore']['arms']['contour']['contour']['steps']"
    if how == "unknown_explore_method":
        cfg["explore"]["arms"]["sgd"]["method"] = "lookahead"
        return cfg, "['explore']['arms']['sgd']['method']"
    if how == "label_noise_too_high":
        cfg["explore"]["settings"]["digits_noisy"]["label_noise"] = 0.95
        return cfg, "['explore']['settings']['digits_noisy']['label_noise']"
    raise AssertionError(how)


BROKEN = ["wrong_type", "unknown_method", "negative_lr", "missing_key", "unknown_dataset",
          "unknown_key", "sparsity_one", "negative_sparsity", "negative_lambda",
          "unknown_penalty", "missing_erm", "negative_round_size", "unknown_acquisition",
          "alignment_above_one", "unknown_curriculum_method", "k_zero", "negative_radius",
          "unknown_distance", "unknown_controller", "negative_rho", "zero_walk_steps",
          "unknown_explore_method", "label_noise_too_high", "empty_grid_values", "empty_family",
          "contrast_without_metric", "negative_temperature", "topk_k_zero",
          "pareto_grid_of_one_lambda", "alvin_alpha_zero", "negative_irm_weight",
          "negative_vrex_weight", "alfa_mix_cap_above_one", "negative_anneal_in_grid",
          "alvin_sweep_alpha_zero", "zero_line_search_iters"]


@pytest.mark.parametrize("how", BROKEN)
def test_malformed_config_names_the_key(how):
    cfg, key = _break(load("tiny.yaml"), how)
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    assert key in str(err.value)


# the JSON-schema keywords the schema uses; a flow mapping with an unquoted comma in a
# description (`description: a, b`) parses the text after the comma as one more key
SCHEMA_KEYWORDS = {
    "type", "description", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "default", "items", "properties", "additionalProperties", "required", "minItems",
    "maxItems", "uniqueItems", "minProperties", "maxProperties", "propertyNames", "pattern",
    "$ref", "$defs", "not", "const", "oneOf", "anyOf", "allOf", "if", "then", "else",
    "$schema", "title", "format", "examples", "minLength", "maxLength"}


def _stray_keys(node, path: str = "") -> list[tuple[str, set[str]]]:
    """Every schema node (one with a type, $ref, enum or description) holding a key that is no
    JSON-schema keyword; the children of ``properties`` / ``$defs`` are names, not keywords."""
    out = []
    if isinstance(node, dict):
        if not path.endswith((".properties", ".$defs")) and (
                {"type", "$ref", "enum", "description"} & set(node)):
            extra = set(node) - SCHEMA_KEYWORDS
            if extra:
                out.append((path, extra))
        for k, v in node.items():
            out += _stray_keys(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _stray_keys(v, f"{path}[{i}]")
    return out


def test_the_schema_has_no_stray_keys():
    assert _stray_keys(yaml.safe_load(Path(SCHEMA).read_text())) == []
    broken = yaml.safe_load("a: {type: number, description: contour, SGD epochs}")
    assert _stray_keys(broken) == [(".a", {"SGD epochs"})]


def test_make_run_puts_the_target_before_the_config_file():
    """`make run TARGET=... CONFIG=...` calls Snakemake with the target first: written after
    --configfile, Snakemake reads a target as a second config file (issue 32)."""
    import subprocess

    r = subprocess.run(["make", "-n", "run", "TARGET=explore", "CONFIG=tiny"], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    assert "snakemake explore --configfile config/tiny.yaml" in r.stdout.splitlines()


def test_a_schema_error_is_one_line_naming_the_key():
    from rose.config_errors import schema_error_message

    cfg = load("tiny.yaml")
    cfg["explore"]["settings"]["digits_noisy"]["dataset"] = "cifar"
    with pytest.raises(WorkflowError) as err:
        validate(cfg, SCHEMA)
    msg = schema_error_message(err.value)
    assert msg.startswith("config key explore.settings.digits_noisy.dataset: 'cifar' is not "
                          "one of ") and "\n" not in msg and "Failed validating" not in msg
    assert schema_error_message(ValueError("plain\nmore")) == "plain"
