/// Reverse-mode differentiation over the recorded graph.
extension Variable {
    /// Accumulates ∂self/∂leaf into the `grad` of every leaf that requires one.
    ///
    /// `self` must be a scalar unless `seed` (∂L/∂self) is given. Gradients of intermediate nodes
    /// are freed as soon as they have been propagated.
    public func backward(seed: Tensor? = nil) {
        guard requiresGrad else { return }
        let start =
            seed
            ?? {
                precondition(value.count == 1, "backward: output of shape \(shape) is not a scalar; pass a seed")
                return Tensor(shape: shape, repeating: 1)
            }()
        let order = topologicalOrder()
        // Intermediate gradients live here, not on the nodes, so a graph can be differentiated once
        // without leaving buffers behind.
        var grads: [ObjectIdentifier: Tensor] = [:]
        grads[ObjectIdentifier(self)] = start
        for node in order.reversed() {
            guard let dOut = grads.removeValue(forKey: ObjectIdentifier(node)) else { continue }
            guard let op = node.op else {
                // A leaf reached as the root: its gradient is the seed itself.
                Kernels.addInPlace(node.gradBuffer(), dOut)
                continue
            }
            // Non-leaf inputs receive gradients in scratch buffers; leaves accumulate in place.
            // A new buffer is left unzeroed until an op either overwrites it or asks for zeros.
            var scratch: [(Variable, Tensor)] = []
            for input in op.inputs where input.op != nil && input.requiresGrad && input.grad == nil {
                if let buffer = grads[ObjectIdentifier(input)] {
                    input.grad = buffer
                } else {
                    input.grad = Tensor(uninitialized: input.shape)
                    input.gradIsUnwritten = true
                }
                scratch.append((input, input.grad!))
            }
            op.backward(dOut: dOut, out: node.value)
            for (input, buffer) in scratch {
                if input.gradIsUnwritten {  // the op added nothing: its contribution is zero
                    buffer.fill(0)
                    input.gradIsUnwritten = false
                }
                grads[ObjectIdentifier(input)] = buffer
                input.grad = nil
            }
        }
    }

    /// Nodes reachable from self that require gradients, each after all of its inputs.
    private func topologicalOrder() -> [Variable] {
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        // Iterative DFS: deep graphs (long sequences, many layers) must not overflow the stack.
        var stack: [(Variable, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded {
                order.append(node)
                continue
            }
            guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
            stack.append((node, true))
            for input in node.op?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input)) {
                stack.append((input, false))
            }
        }
        return order
    }
}
