"""Nested Keras graphs, opened: the leaf layers of a model whose layers are themselves models.

A backbone is often built from sub-models (a preprocessing Sequential model, a functional
VGG, a pooling layer), so its inner layers are not in its own layer list, and the usual
"cut the model at a layer" recipe does not reach them. Here a functional or built Sequential
model is run node by node, descending into nested models, so every leaf layer is seen, and
`flatten` rebuilds a model as one functional graph of the same layer objects (the same
weights, no copies). A subclassed model stays one opaque layer.
"""

from __future__ import annotations

import keras

__all__ = ["graph_of", "run_graph", "leaf_layers", "flatten", "fresh_inputs", "input_name", "nodes", "producer"]

def graph_of(layer):
    """The functional graph of a functional or built Sequential model; None for a plain layer
    or a subclassed model (which stays one opaque layer)."""
    if isinstance(layer, keras.Sequential):
        return layer._functional
    if isinstance(layer, keras.Model) and getattr(layer, "_nodes_by_depth", None) is not None:
        return layer
    return None


def run_graph(model: keras.Model, inputs, call):
    """The model's graph run on `inputs`, each layer computed by `call(layer, *args, **kwargs)`,
    descending into nested models so that `call` sees only their leaf layers."""
    def node(layer, *args, **kwargs):
        if graph_of(layer) is not None:
            return run_graph(layer, args[0], call)
        return call(layer, *args, **kwargs)

    return graph_of(model)._run_through_graph(inputs, operation_fn=lambda op: op, call_fn=node)


def leaf_layers(model: keras.Model) -> list:
    """The model's layers with its nested models opened (input layers left out), in graph order."""
    found = []
    for layer in graph_of(model).layers:
        if graph_of(layer) is not None:
            found.extend(leaf_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            found.append(layer)
    return found


def flatten(model: keras.Model, name: str | None = None) -> keras.Model:
    """One functional model of the model's leaf layers (the same objects, so the same weights):
    the model itself when it is already a flat functional model."""
    graph = graph_of(model)
    if graph is None:
        raise ValueError(f"{model.name!r} ({type(model).__name__}) is not a functional or built "
                         f"Sequential model, so its inner layers cannot be reached")
    if graph is model and not any(graph_of(layer) is not None for layer in model.layers):
        return model
    inputs = fresh_inputs(graph)
    outputs = run_graph(graph, inputs, lambda layer, *args, **kwargs: layer(*args, **kwargs))
    names = [layer.name for layer in leaf_layers(model)]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"the nested models of {model.name!r} reuse the layer name(s) "
                         f"{', '.join(repeated)}; tdexplain reaches inner layers by name: give them unique names")
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=name or model.name)


def fresh_inputs(graph: keras.Model) -> list:
    """New inputs like the graph's, with their names, to run its layers on again."""
    return [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=input_name(t)) for t in graph.inputs]


def input_name(tensor) -> str:
    """An input's name: its input layer's (an unnamed input's tensor is only "keras_tensor_N")."""
    return tensor._keras_history.operation.name


def nodes(graph: keras.Model) -> list:
    """The graph's nodes in order of computation, input nodes left out."""
    return [node for depth in sorted(graph._nodes_by_depth, reverse=True)
            for node in graph._nodes_by_depth[depth] if node.operation and not node.is_input]


def producer(tensor):
    """The leaf layer that computes a model's output tensor, through nested models."""
    operation, _, index = tensor._keras_history
    while graph_of(operation) is not None:
        operation, _, index = graph_of(operation).outputs[index]._keras_history
    return operation
