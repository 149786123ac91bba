// Uploads one file to a tus server with tus-js-client, as a Node.js program would.
//
// node tus_upload.js ENDPOINT FILE NAME URLS_FILE CHUNK_BYTES RETRY_DELAYS_MS
//
// URLS_FILE is tus-js-client's own FileUrlStorage: an upload cut in one run is found
// there by the next, which resumes it from what the server holds. RETRY_DELAYS_MS is
// a comma-separated list ("" for none: the first cut ends the run). Every response the
// client gets, and the end, is printed as one JSON line for the test to read.
"use strict";
const fs = require("fs");
const tus = require("tus-js-client");

const [endpoint, file, name, urlsFile, chunkBytes, retryDelays] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + "\n");

async function main() {
  const upload = new tus.Upload(fs.createReadStream(file), {
    endpoint,
    chunkSize: Number(chunkBytes),
    uploadSize: fs.statSync(file).size,
    metadata: { filename: name },
    urlStorage: new tus.FileUrlStorage(urlsFile),
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    retryDelays: retryDelays ? retryDelays.split(",").map(Number) : null,
    onAfterResponse(request, response) {
      say({ method: request.getMethod(), status: response.getStatus(),
            offset: response.getHeader("Upload-Offset") ?? null,
            digest: response.getHeader("Repr-Digest") ?? null });
    },
    onError(error) {
      say({ end: "error", message: String(error.message || error) });
      process.exitCode = 1;
    },
    onSuccess() {
      say({ end: "success", url: upload.url });
    },
  });
  const previous = await upload.findPreviousUploads();
  if (previous.length > 0) {
    say({ resuming: previous[0].uploadUrl });
    upload.resumeFromPreviousUpload(previous[0]);
  }
  upload.start();
}

main().catch((error) => {
  say({ end: "error", message: String(error) });
  process.exitCode = 2;
});
