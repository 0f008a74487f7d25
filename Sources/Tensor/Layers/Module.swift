/// Something with named, trainable parameters.
public protocol Module {
    /// Every parameter with a stable, checkpoint-ready name, in a fixed order.
    var namedParameters: [(String, Variable)] { get }
}

extension Module {
    /// Prefixes every parameter name with `prefix.`: how a layer's names nest inside a model's.
    public func namedParameters(prefix: String) -> [(String, Variable)] {
        namedParameters.map { ("\(prefix).\($0.0)", $0.1) }
    }
}
