import Models

extension RunSettings {
    /// A lower bound of the bytes one worker holds: three models (policy, SFT reference, reward
    /// model), gradients and AdamW moments of the two that train, the policy's decode pack, and one micro-batch's
    /// activations at full context: attention scores, each block's tensors, and the logits with
    /// their softmax and gradient (with `model.gradient_checkpointing`: one block's, the others'
    /// inputs, and 16 MB chunks of logits). A Double: absurd settings overflow Int.
    public var workerMemoryEstimate: Double {
        let shape = (try? RunModel.shape(self)) ?? ModelShape(gpt2Config)
        let batch = Double(max(sft.microBatch, 2 * rewardModel.microBatch, rl.microBatch))
        let t = Double(min(model.contextLength, shape.contextLength)), rows = batch * t
        let (w, layers) = (Double(shape.width), Double(shape.layers))
        let block = batch * Double(shape.heads) * t * t * 2 + rows * (8 * w + 3 * Double(shape.mlpWidth))
        let vocabulary = Double(shape.vocabularySize)
        let activations: Double, logits: Double
        if model.gradientCheckpointing {
            activations = block + rows * w * layers
            logits = 3 * min(rows * vocabulary, Double(1 << 22))
        } else {
            activations = block * layers
            logits = 3 * rows * vocabulary
        }
        // Copies of the parameters: three models, the gradients and two AdamW moments of two,
        // and the policy packed for decode steps (half a copy in bf16).
        let copies = 3 + 2 * 3 + (model.precision == .bf16 ? 0.5 : 1)
        return 4 * (Double(shape.parameterCount) * copies + activations + logits)
    }

    /// The policy's shape: byte-level vocabulary, the configured width, depth and context.
    public var gpt2Config: GPT2Config {
        GPT2Config(
            vocabularySize: ByteTokenizer().vocabularySize, contextLength: model.contextLength, width: model.width,
            layers: model.layers, heads: model.heads)
    }
}
