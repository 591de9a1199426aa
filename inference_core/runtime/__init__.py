"""Running a trained model: the streaming session (numpy only), the two backends behind one
interface (ONNX Runtime and torch), the bridge server, live capture, whole-file generation and
the speed benchmark. Nothing here trains."""
