// Greedy decoding that prints, at every step, the best tokens with their logits, so that two builds of llama.cpp can
// be compared token by token (scripts/check_arm.py).
//
//   greedy-probe generate MODEL N_PREDICT THREADS FLASH_ATTN PROMPT [FORCED]
//       FLASH_ATTN: on (what edge-assistant uses) or off, a second correct way to compute the same logits
//       stdout, one line per step, tab-separated: step, the chosen token's piece as hex, then the TOP_K best tokens
//       as id and logit, best first (ties to the lower id, as llama.cpp's greedy sampler does).
//       FORCED: comma-separated token ids to feed back instead of the chosen ones (the steps still report this build's
//       own choice), so that a second build can be judged on the first one's context at every step.
//   greedy-probe quantize IN OUT THREADS
//       requantize IN to Q4_0 (to exercise the Q4_0 weight repacking on ARM)
//
// All of llama.cpp's log, debug lines included (they report weight repacking), goes to stderr.
#include "llama.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

static const int TOP_K = 8;

static void log_all(ggml_log_level, const char * text, void *) {
    fputs(text, stderr);
}

static std::vector<llama_token> parse_tokens(const std::string & list) {
    std::vector<llama_token> tokens;
    std::stringstream in(list);
    std::string item;
    while (std::getline(in, item, ',')) {
        tokens.push_back(atoi(item.c_str()));
    }
    return tokens;
}

static int generate(const char * path, int n_predict, int n_threads, bool flash_attn, const std::string & prompt,
                    const std::vector<llama_token> & forced) {
    llama_model * model = llama_model_load_from_file(path, llama_model_default_params());
    if (model == nullptr) {
        fprintf(stderr, "error: cannot load %s\n", path);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_prompt = -llama_tokenize(vocab, prompt.c_str(), prompt.size(), nullptr, 0, true, true);
    std::vector<llama_token> tokens(n_prompt);
    if (llama_tokenize(vocab, prompt.c_str(), prompt.size(), tokens.data(), n_prompt, true, true) < 0) {
        fprintf(stderr, "error: cannot tokenize the prompt\n");
        return 1;
    }

    llama_context_params params = llama_context_default_params();
    params.n_ctx = n_prompt + n_predict;
    params.n_batch = n_prompt;
    params.n_threads = n_threads;
    params.n_threads_batch = n_threads;
    params.flash_attn_type = flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, params);
    if (ctx == nullptr) {
        fprintf(stderr, "error: cannot create a context\n");
        return 1;
    }
    fprintf(stderr, "system_info: %s\n", llama_print_system_info());

    const int n_vocab = llama_vocab_n_tokens(vocab);
    std::vector<int> order(n_vocab);
    llama_batch batch = llama_batch_get_one(tokens.data(), n_prompt);
    llama_token next = 0;
    const int64_t t0 = ggml_time_us();
    int step = 0;
    while (step < n_predict) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "error: decode failed at step %d\n", step);
            return 1;
        }
        const float * logits = llama_get_logits_ith(ctx, -1);
        for (int i = 0; i < n_vocab; ++i) {
            order[i] = i;
        }
        std::partial_sort(order.begin(), order.begin() + TOP_K, order.end(), [logits](int a, int b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
        char piece[256];
        const int n = llama_token_to_piece(vocab, order[0], piece, sizeof(piece), 0, true);
        printf("%d\t", step);
        for (int i = 0; i < n; ++i) {
            printf("%02x", (unsigned char) piece[i]);
        }
        for (int i = 0; i < TOP_K; ++i) {
            printf("\t%d\t%.9g", order[i], logits[order[i]]);
        }
        printf("\n");
        fflush(stdout);
        ++step;
        if (!forced.empty() && step >= (int) forced.size()) {
            break;
        }
        next = forced.empty() ? order[0] : forced[step - 1];
        if (llama_vocab_is_eog(vocab, next)) {
            break;
        }
        batch = llama_batch_get_one(&next, 1);
    }
    const double seconds = (ggml_time_us() - t0) / 1e6;
    fprintf(stderr, "greedy-probe: %d tokens in %.2f s\n", step, seconds);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

static int quantize(const char * in, const char * out, int n_threads) {
    llama_model_quantize_params params = llama_model_quantize_default_params();
    params.ftype = LLAMA_FTYPE_MOSTLY_Q4_0;
    params.allow_requantize = true;
    params.nthread = n_threads;
    return llama_model_quantize(in, out, &params) == 0 ? 0 : 1;
}

int main(int argc, char ** argv) {
    llama_log_set(log_all, nullptr);
    const std::string mode = argc > 1 ? argv[1] : "";
    int rc = 2;
    const std::string flash_attn = argc > 5 ? argv[5] : "";
    if (mode == "generate" && (argc == 7 || argc == 8) && (flash_attn == "on" || flash_attn == "off")) {
        llama_backend_init();
        rc = generate(argv[2], atoi(argv[3]), atoi(argv[4]), flash_attn == "on", argv[6],
                      parse_tokens(argc == 8 ? argv[7] : ""));
    } else if (mode == "quantize" && argc == 5) {
        llama_backend_init();
        rc = quantize(argv[2], argv[3], atoi(argv[4]));
    } else {
        fprintf(stderr, "usage: %s generate MODEL N_PREDICT THREADS on|off PROMPT [FORCED]\n", argv[0]);
        fprintf(stderr, "       %s quantize IN OUT THREADS\n", argv[0]);
        return rc;
    }
    llama_backend_free();
    return rc;
}
