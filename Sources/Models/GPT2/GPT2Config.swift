import Foundation

/// Shape of a GPT-2 model, named as in Hugging Face's `config.json`.
public struct GPT2Config: Sendable, Equatable, Codable {
    public var vocabularySize: Int
    public var contextLength: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var layerNormEpsilon: Float

    /// Parameters of the model: embeddings, each block's attention, MLP and norms, the final norm.
    public var parameterCount: Int {
        let w = width
        return vocabularySize * w + contextLength * w + layers * (12 * w * w + 13 * w) + 2 * w
    }

    enum CodingKeys: String, CodingKey {
        case vocabularySize = "vocab_size"
        case contextLength = "n_positions"
        case width = "n_embd"
        case layers = "n_layer"
        case heads = "n_head"
        case layerNormEpsilon = "layer_norm_epsilon"
    }

    public init(
        vocabularySize: Int, contextLength: Int, width: Int, layers: Int, heads: Int, layerNormEpsilon: Float = 1e-5
    ) {
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.width = width
        self.layers = layers
        self.heads = heads
        self.layerNormEpsilon = layerNormEpsilon
    }

    /// For tests: fast on any machine.
    public static let tiny = GPT2Config(vocabularySize: 259, contextLength: 64, width: 32, layers: 2, heads: 2)
    /// The benchmark's small preset.
    public static let small = GPT2Config(vocabularySize: 512, contextLength: 256, width: 256, layers: 4, heads: 4)
    /// OpenAI's GPT-2 (124M).
    public static let gpt2 = GPT2Config(vocabularySize: 50257, contextLength: 1024, width: 768, layers: 12, heads: 12)

    public static func preset(named name: String) -> GPT2Config? {
        ["tiny": tiny, "small": small, "gpt2-124M": gpt2, "gpt2": gpt2][name]
    }

    /// Checks the relations the model relies on; the message says which field is wrong.
    public func validate() throws(ModelError) {
        for (name, value) in [
            ("vocab_size", vocabularySize), ("n_positions", contextLength), ("n_embd", width), ("n_layer", layers),
            ("n_head", heads),
        ] where value < 1 {
            throw ModelError(message: "config.json: \(name) must be at least 1, got \(value)")
        }
        guard width % heads == 0 else {
            throw ModelError(message: "config.json: n_embd (\(width)) must be a multiple of n_head (\(heads))")
        }
    }

    /// Reads `config.json` (other keys, which transformers writes, are ignored).
    public static func read(_ url: URL) throws(ModelError) -> GPT2Config {
        let config: GPT2Config
        do { config = try JSONDecoder().decode(GPT2Config.self, from: Data(contentsOf: url)) } catch {
            throw ModelError(message: "\(url.path): not a GPT-2 config.json: \(error)")
        }
        try config.validate()
        return config
    }

    /// The `config.json` that transformers' `GPT2LMHeadModel.from_pretrained` expects. With
    /// `endOfText`, the tokenizer's end-of-text id is its begin- and end-of-sequence token (without
    /// one, transformers assumes GPT-2's 50256, which a smaller vocabulary does not have).
    public func jsonObject(endOfText: Int32? = nil) -> [String: Any] {
        var object: [String: Any] = [
            "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": vocabularySize,
            "n_positions": contextLength, "n_ctx": contextLength, "n_embd": width, "n_layer": layers, "n_head": heads,
            "layer_norm_epsilon": Double(layerNormEpsilon), "activation_function": "gelu_new",
            "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "tie_word_embeddings": true,
            "scale_attn_weights": true, "torch_dtype": "float32",
        ]
        if let endOfText {
            object["bos_token_id"] = Int(endOfText)
            object["eos_token_id"] = Int(endOfText)
        }
        return object
    }
}

/// A model that cannot be built or loaded, in a sentence that says what to fix.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
