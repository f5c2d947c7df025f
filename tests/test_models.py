import pytest
import torch

from cissl_kit.models import MODELS, build_model, default_model


@pytest.mark.parametrize("name, shape", [("small_cnn", (1, 8, 8)), ("wrn28_2", (3, 32, 32)),
                                         ("resnet18", (3, 32, 32)), ("mlp", (2,))])
def test_models_expose_features_and_a_linear_head(name, shape):
    torch.manual_seed(0)
    model = build_model(name, 7, shape).eval()
    x = torch.randn(3, *shape)
    feats = model.features(x)
    assert feats.shape == (3, model.feature_dim)
    assert isinstance(model.head, torch.nn.Linear) and model.num_classes == 7
    assert torch.allclose(model(x), model.head(feats))
    groups = model.layer_groups()
    assert list(groups)[-1] == "head"
    grouped = {id(p) for module in groups.values() for p in module.parameters()}
    assert grouped == {id(p) for p in model.parameters()}  # the groups cover every parameter


def test_every_wrn_parameter_gets_a_gradient():
    model = build_model("wrn28_2", 10, (3, 32, 32))
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert 1.4e6 < sum(p.numel() for p in model.parameters()) < 1.5e6  # WRN-28-2: 1.47 M


def test_model_errors_and_defaults():
    with pytest.raises(ValueError, match="model must be one of"):
        build_model("vit", 10, (3, 32, 32))
    with pytest.raises(ValueError, match="vector inputs"):
        build_model("mlp", 10, (3, 32, 32))
    assert default_model((1, 8, 8)) == "small_cnn" and default_model((3, 32, 32)) == "wrn28_2"
    assert default_model((2,)) == "mlp" and set(MODELS) == {"small_cnn", "wrn28_2", "resnet18", "mlp"}
