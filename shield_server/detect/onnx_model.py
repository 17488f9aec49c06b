"""The few fields of an ONNX model that CenterFace's loader rewrites, read and written with protobuf alone.

The `onnx` package would do the same, but it weighs ~70 MB (mostly its own test data) for three fields.
The messages below declare only those fields, with their numbers and types from onnx.proto; protobuf keeps
every other field of the file as it is ("unknown fields") and writes it back unchanged, so the model
ONNX Runtime gets differs from the original only where it was edited. tests/test_detect.py checks the
result against the `onnx` package's own rewrite (a test dependency).
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELDS = {  # message: (field name, number, type or message, repeated, oneof)
    "ModelProto": [("graph", 7, "GraphProto", False, None)],
    "GraphProto": [("initializer", 5, "TensorProto", True, None), ("input", 11, "ValueInfoProto", True, None),
                   ("output", 12, "ValueInfoProto", True, None)],
    "TensorProto": [("name", 8, "string", False, None)],
    "ValueInfoProto": [("name", 1, "string", False, None), ("type", 2, "TypeProto", False, None)],
    "TypeProto": [("tensor_type", 1, "TensorType", False, "value")],
    "TensorType": [("shape", 2, "TensorShapeProto", False, None)],
    "TensorShapeProto": [("dim", 1, "Dimension", True, None)],
    "Dimension": [("dim_value", 1, "int64", False, "value"), ("dim_param", 2, "string", False, "value")],
}
_SCALARS = {"string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64}


def _classes() -> dict:
    file = descriptor_pb2.FileDescriptorProto(name="photo_shield_onnx_subset.proto", package="photo_shield_onnx",
                                              syntax="proto2")
    for name, fields in _FIELDS.items():
        message = file.message_type.add(name=name)
        oneofs = []
        for field_name, number, kind, repeated, oneof in fields:
            field = message.field.add(name=field_name, number=number, label=3 if repeated else 1)
            if kind in _SCALARS:
                field.type = _SCALARS[kind]
            else:
                field.type, field.type_name = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE, f".{file.package}.{kind}"
            if oneof:
                if oneof not in oneofs:
                    oneofs.append(oneof)
                    message.oneof_decl.add(name=oneof)
                field.oneof_index = oneofs.index(oneof)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(file.SerializeToString())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{name}"))
            for name in _FIELDS}


ModelProto = _classes()["ModelProto"]
