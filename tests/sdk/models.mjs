// The official `openai` npm client against a gateway with routes (SPEC §8):
// what an application using the SDK sees. tests/integration/sdk_test.cpp runs
// it against the real gateway and mock servers; it also runs by hand:
//
//   node tests/sdk/models.mjs --base-url http://127.0.0.1:8080/v1 \
//       --model deepseek-r1 --model deepseek-v3 --expect-ids deepseek-r1,deepseek-v3
//
//   --base-url URL    the listener, with /v1 (env OPENAI_BASE_URL)
//   --model NAME      a model the gateway routes; repeat it or give a comma list
//                     (env DSGW_SDK_MODELS, comma-separated). Each one is
//                     completed once plainly and once streamed.
//   --expect-ids LIST comma-separated: GET /v1/models must list exactly these,
//                     once each, and GET /v1/models/{id} must answer each
//                     (env DSGW_SDK_EXPECT_IDS; default: the --model names
//                     must be among the listed ones)
//   --unknown NAME    a model no route takes (default no-such-model)
//   --api-key KEY     the bearer key sent (env OPENAI_API_KEY, default sk-test)
//
// It prints one line per check, "ok: ..." or "FAIL: ...", and exits 0 only
// when every check held (1 when one failed, 2 on a bad command line). The
// requests that must fail are the ones OpenAI itself refuses, with the errors
// the SDK turns into its exception classes: an unknown model (404
// NotFoundError, code model_not_found), no model (400 BadRequestError), a
// model that is not a string (400 BadRequestError, code invalid_type).

import OpenAI from 'openai';

function usage(message) {
  console.error(`models.mjs: ${message}`);
  console.error(
    'usage: node models.mjs --base-url URL --model NAME [--model NAME...] ' +
      '[--expect-ids A,B,...] [--unknown NAME] [--api-key KEY]',
  );
  process.exit(2);
}

function commaList(s) {
  return s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

function parseArgs(argv) {
  const opts = {
    baseURL: process.env.OPENAI_BASE_URL ?? '',
    models: commaList(process.env.DSGW_SDK_MODELS ?? ''),
    expectIds:
      process.env.DSGW_SDK_EXPECT_IDS === undefined
        ? null
        : commaList(process.env.DSGW_SDK_EXPECT_IDS),
    unknown: 'no-such-model',
    apiKey: process.env.OPENAI_API_KEY ?? 'sk-test',
  };
  let modelsFromArgs = false;
  for (let i = 0; i < argv.length; ++i) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--base-url':
        opts.baseURL = value();
        break;
      case '--model':
        if (!modelsFromArgs) opts.models = [];
        modelsFromArgs = true;
        opts.models.push(...commaList(value()));
        break;
      case '--expect-ids':
        opts.expectIds = commaList(value());
        break;
      case '--unknown':
        opts.unknown = value();
        break;
      case '--api-key':
        opts.apiKey = value();
        break;
      default:
        usage(`unknown argument ${JSON.stringify(flag)}`);
    }
  }
  if (opts.baseURL === '') usage('no --base-url (or OPENAI_BASE_URL)');
  if (opts.models.length === 0) usage('no --model (or DSGW_SDK_MODELS)');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
// No retries: a failure shows at once and as itself (the SDK would retry a
// 5xx or a connection error twice, with back-off).
const client = new OpenAI({
  baseURL: opts.baseURL,
  apiKey: opts.apiKey,
  maxRetries: 0,
  timeout: 15_000,
});

let failures = 0;
function ok(what) {
  console.log(`ok: ${what}`);
}
function fail(what) {
  ++failures;
  console.log(`FAIL: ${what}`);
}
function describe(e) {
  if (e instanceof OpenAI.APIError) {
    return (
      `${e.constructor.name} status=${e.status} type=${JSON.stringify(e.type)} ` +
      `code=${JSON.stringify(e.code)} param=${JSON.stringify(e.param)} ` +
      `message=${JSON.stringify(e.error?.message ?? e.message)}`
    );
  }
  return `${e?.constructor?.name ?? typeof e}: ${e?.message ?? String(e)}`;
}

// Runs `call`, which must throw an instance of `Class` whose fields hold
// `expected` (status, code, type, param, message).
async function expectError(what, Class, expected, call) {
  let result;
  try {
    result = await call();
  } catch (e) {
    const wrong = [];
    if (!(e instanceof Class)) wrong.push(`not an instance of OpenAI.${Class.name}`);
    for (const [key, want] of Object.entries(expected)) {
      const got = key === 'message' ? e?.error?.message : e?.[key];
      if (got !== want) wrong.push(`${key} is ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    }
    if (wrong.length === 0) ok(`${what}: caught ${describe(e)}`);
    else fail(`${what}: caught ${describe(e)}: ${wrong.join('; ')}`);
    return;
  }
  fail(`${what}: no error thrown (got ${JSON.stringify(result)?.slice(0, 200)})`);
}

const messages = [{ role: 'user', content: 'Say hello.' }];

for (const model of opts.models) {
  try {
    const r = await client.chat.completions.create({ model, messages, max_tokens: 8 });
    const text = r.choices?.[0]?.message?.content;
    if (typeof text !== 'string') {
      fail(`create model=${model}: no choices[0].message.content in ${JSON.stringify(r).slice(0, 200)}`);
    } else {
      ok(
        `create model=${model}: response model ${JSON.stringify(r.model)}, ` +
          `system_fingerprint ${JSON.stringify(r.system_fingerprint ?? null)}`,
      );
    }
  } catch (e) {
    fail(`create model=${model}: ${describe(e)}`);
  }

  try {
    const stream = await client.chat.completions.create({ model, messages, max_tokens: 8, stream: true });
    let chunks = 0;
    let finish = null;
    let fingerprint = null;
    for await (const chunk of stream) {
      ++chunks;
      fingerprint ??= chunk.system_fingerprint ?? null;
      finish = chunk.choices?.[0]?.finish_reason ?? finish;
    }
    if (chunks > 0 && finish !== null) {
      ok(
        `stream model=${model}: ${chunks} chunks, finish_reason ${JSON.stringify(finish)}, ` +
          `system_fingerprint ${JSON.stringify(fingerprint)}`,
      );
    } else {
      fail(`stream model=${model}: ${chunks} chunks, finish_reason ${JSON.stringify(finish)}`);
    }
  } catch (e) {
    fail(`stream model=${model}: ${describe(e)}`);
  }
}

const notFound = {
  status: 404,
  code: 'model_not_found',
  type: 'invalid_request_error',
  param: 'model',
  message: `The model '${opts.unknown}' does not exist or you do not have access to it.`,
};
await expectError(`create model=${opts.unknown}`, OpenAI.NotFoundError, notFound, () =>
  client.chat.completions.create({ model: opts.unknown, messages }),
);
await expectError(
  'create without model',
  OpenAI.BadRequestError,
  { status: 400, type: 'invalid_request_error', message: 'you must provide a model parameter' },
  () => client.chat.completions.create({ messages }),
);
await expectError(
  'create model=42',
  OpenAI.BadRequestError,
  { status: 400, type: 'invalid_request_error', code: 'invalid_type', param: 'model' },
  () => client.chat.completions.create({ model: 42, messages }),
);

let listed = null;
try {
  listed = [];
  for await (const m of client.models.list()) listed.push(m.id);
} catch (e) {
  fail(`models.list: ${describe(e)}`);
  listed = null;
}
if (listed !== null) {
  const seen = new Set();
  const duplicates = listed.filter((id) => seen.has(id) || !seen.add(id));
  const wanted = opts.expectIds ?? opts.models;
  const missing = wanted.filter((id) => !seen.has(id));
  const extra = opts.expectIds === null ? [] : listed.filter((id) => !opts.expectIds.includes(id));
  const shown = JSON.stringify(listed);
  if (duplicates.length > 0) fail(`models.list: ${shown} lists ${JSON.stringify(duplicates)} more than once`);
  else if (missing.length > 0) fail(`models.list: ${shown} lacks ${JSON.stringify(missing)}`);
  else if (extra.length > 0) fail(`models.list: ${shown} has unexpected ${JSON.stringify(extra)}`);
  else ok(`models.list: ${shown}`);
}

for (const id of opts.expectIds ?? opts.models) {
  try {
    const m = await client.models.retrieve(id);
    if (m.id === id && m.object === 'model') ok(`models.retrieve ${id}: ${JSON.stringify(m)}`);
    else fail(`models.retrieve ${id}: got ${JSON.stringify(m)}`);
  } catch (e) {
    fail(`models.retrieve ${id}: ${describe(e)}`);
  }
}
await expectError(`models.retrieve ${opts.unknown}`, OpenAI.NotFoundError, notFound, () =>
  client.models.retrieve(opts.unknown),
);

console.log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
