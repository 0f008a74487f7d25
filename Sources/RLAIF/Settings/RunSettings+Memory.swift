import Models

extension RunSettings {
    /// A lower bound of the bytes one worker holds: three models (policy, SFT reference, reward
    /// model), gradients and AdamW moments of the two that train, and one micro-batch's
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
        return 4 * (Double(shape.parameterCount) * (3 + 2 * 3) + activations + logits)
    }

    /// The policy's shape: byte-level vocabulary, the configured width, depth and context.
    public var gpt2Config: GPT2Config {
        GPT2Config(
            vocabularySize: ByteTokenizer().vocabularySize, contextLength: model.contextLength, width: model.width,
            layers: model.layers, heads: model.heads)
    }
}
