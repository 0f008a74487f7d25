import Protocol
import Tensor

/// Model states as they travel in `weights` messages and lie in checkpoints: the flat values,
/// the optimizer step as a one-element int64 tensor, then the AdamW moments when there are any.
/// This is the one place that layout is written and read.
extension ModelReplica.ModelState {
    /// The state as a `weights` message of replica version `version`.
    public func weights(version: UInt64) -> Wire.Weights {
        var tensors: [WireTensor] = [.float32(values), .int64([Int64(optimizerStep)])]
        if let firstMoment, let secondMoment { tensors += [.float32(firstMoment), .float32(secondMoment)] }
        return Wire.Weights(model: role.wireModel, version: version, tensors: tensors)
    }

    /// Reads a `weights` message; nil when it is not a model state.
    public init?(_ w: Wire.Weights) {
        guard let role = ModelReplica.Role(w.model), w.tensors.count == 2 || w.tensors.count == 4,
            case .float32(let values) = w.tensors[0], case .int64(let step) = w.tensors[1], step.count == 1
        else { return nil }
        var m: Tensor?, v: Tensor?
        if w.tensors.count == 4, case .float32(let a) = w.tensors[2], case .float32(let b) = w.tensors[3] {
            (m, v) = (a, b)
        }
        self.init(role: role, values: values, firstMoment: m, secondMoment: v, optimizerStep: Int(step[0]))
    }
}

extension ModelReplica.Role {
    public var wireModel: Wire.Model {
        switch self {
        case .policy: .policy
        case .reference: .reference
        case .reward: .reward
        }
    }

    public init?(_ model: Wire.Model) {
        switch model {
        case .policy: self = .policy
        case .reference: self = .reference
        case .reward: self = .reward
        case .value: return nil
        }
    }
}
