import Foundation
import Tensor

/// Shape of a Llama-architecture model (Llama, Qwen2, Mistral, SmolLM), read from Hugging Face's
/// `config.json` in either the transformers 4 form (`rope_theta`, `rope_scaling`) or the 5 form
/// (`rope_parameters`). The file's own JSON is kept, so a saved checkpoint carries it unchanged.
public struct LlamaConfig: Sendable, Equatable {
    /// The transformers class a checkpoint belongs to; it decides the parameter set.
    public enum Family: String, Sendable, CaseIterable {
        case llama, qwen2, mistral
        public var architecture: String {
            switch self {
            case .llama: "LlamaForCausalLM"
            case .qwen2: "Qwen2ForCausalLM"
            case .mistral: "MistralForCausalLM"
            }
        }
    }

    /// How rotary frequencies are derived from θ.
    public enum RopeScaling: Sendable, Equatable {
        case none
        /// Every frequency divided by `factor`.
        case linear(factor: Float)
        /// Llama 3.1's: long wavelengths divided by `factor`, short ones kept, a blend between.
        case llama3(factor: Float, lowFrequencyFactor: Float, highFrequencyFactor: Float, originalContext: Int)
    }

    public var family: Family
    public var vocabularySize: Int
    public var width: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    /// Positions rlaif tables rotary angles for: the checkpoint's, at most `maxContext`.
    public var contextLength: Int
    public var rmsNormEpsilon: Float
    public var ropeTheta: Float
    public var ropeScaling: RopeScaling
    public var tiedEmbeddings: Bool
    /// Biases on q, k and v (Qwen2; Llama's `attention_bias`), and on o (Llama's `attention_bias`).
    public var qkvBias: Bool
    public var outputBias: Bool
    public var mlpBias: Bool
    /// Each layer's sliding window, nil where it attends to every earlier position.
    public var slidingWindows: [Int?]
    /// The checkpoint's config.json as read (written back on save), or nil for a built config.
    public var source: Data?

    /// rlaif's cap on positions: far beyond its runs, and a rotary table of a few MB.
    public static let maxContext = 8192

    /// The rotary frequencies of one head, as transformers computes them in Float32.
    public var rotaryFrequencies: [Float] {
        let base = RotaryTable.standardFrequencies(headDim: headDim, base: ropeTheta)
        switch ropeScaling {
        case .none: return base
        case .linear(let factor): return base.map { $0 / factor }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = Float(original) / low, highWavelength = Float(original) / high
            return base.map { f in
                let wavelength = 2 * Float.pi / f
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / factor }
                let smooth = (Float(original) / wavelength - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
    }

    /// Parameters of the model (embeddings, blocks, final norm, an untied head).
    public var parameterCount: Int {
        let (q, kv) = (heads * headDim, kvHeads * headDim)
        let attention = width * q + 2 * width * kv + q * width + (qkvBias ? q + 2 * kv : 0) + (outputBias ? width : 0)
        let mlp = 3 * width * intermediateSize + (mlpBias ? 2 * intermediateSize + width : 0)
        let block = attention + mlp + 2 * width
        return vocabularySize * width * (tiedEmbeddings ? 1 : 2) + layers * block + width
    }

    public init(
        family: Family, vocabularySize: Int, width: Int, intermediateSize: Int, layers: Int, heads: Int, kvHeads: Int,
        headDim: Int? = nil, contextLength: Int, rmsNormEpsilon: Float = 1e-5, ropeTheta: Float = 10_000,
        ropeScaling: RopeScaling = .none, tiedEmbeddings: Bool, slidingWindow: Int? = nil
    ) {
        self.family = family
        self.vocabularySize = vocabularySize
        self.width = width
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? width / max(heads, 1)
        self.contextLength = min(contextLength, Self.maxContext)
        self.rmsNormEpsilon = rmsNormEpsilon
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tiedEmbeddings = tiedEmbeddings
        qkvBias = family == .qwen2
        outputBias = false
        mlpBias = false
        slidingWindows = Array(repeating: family == .mistral ? slidingWindow : nil, count: layers)
        source = nil
    }

    /// SmolLM2-135M's shape (the benchmark's), with random weights.
    public static let smolLM2 = LlamaConfig(
        family: .llama, vocabularySize: 49152, width: 576, intermediateSize: 1536, layers: 30, heads: 9, kvHeads: 3,
        contextLength: 8192, rmsNormEpsilon: 1e-5, ropeTheta: 100_000, tiedEmbeddings: true)

    /// Checks the relations the model relies on; the message says which field is wrong.
    public func validate() throws(ModelError) {
        for (name, value) in [
            ("vocab_size", vocabularySize), ("hidden_size", width), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", layers), ("num_attention_heads", heads), ("num_key_value_heads", kvHeads),
            ("head_dim", headDim), ("max_position_embeddings", contextLength),
        ] where value < 1 {
            throw ModelError(message: "config.json: \(name) must be at least 1, got \(value)")
        }
        guard heads % kvHeads == 0 else {
            throw ModelError(
                message:
                    "config.json: num_attention_heads (\(heads)) must be a multiple of num_key_value_heads (\(kvHeads))"
            )
        }
        guard headDim % 2 == 0 else { throw ModelError(message: "config.json: head_dim (\(headDim)) must be even") }
        if let bad = slidingWindows.compactMap({ $0 }).first(where: { $0 < 1 }) {
            throw ModelError(message: "config.json: sliding_window must be at least 1, got \(bad)")
        }
    }
}
