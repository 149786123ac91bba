// ft's folder page: uploads by drag and drop or file picker, resumable, over tus 1.0.
// No framework, no CDN. Each file is created with a POST to the folder's URL (its name
// in the `filename` metadata) and sent in PATCHes; the upload's URL is kept in
// localStorage, so choosing the same file again after a closed tab, a sleeping laptop
// or a dropped link asks the server what it holds (HEAD) and sends only the rest.
// The file appears in the folder only once the server has checked its SHA-256 and
// published it; the page then shows that SHA-256.
"use strict";

(function () {
  const CHUNK = 16 * 1024 * 1024;
  const TUS = { "Tus-Resumable": "1.0.0" };
  const panel = document.getElementById("upload");
  if (!panel) return;
  panel.hidden = false;

  const picker = document.getElementById("pick-files");
  const folderPicker = document.getElementById("pick-folder");
  const list = document.getElementById("uploads");
  const total = document.getElementById("total-bar");
  const totalText = document.getElementById("total-text");
  let grandSize = 0;
  let grandDone = 0;

  function b64(text) {
    return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
  }

  function hexOfReprDigest(value) {
    const match = /sha-256=:([A-Za-z0-9+/=]+):/i.exec(value || "");
    if (!match) return "";
    return Array.from(atob(match[1]), (c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
  }

  function folderUrl(relativeDir) {
    let base = location.pathname.endsWith("/") ? location.pathname : location.pathname + "/";
    for (const part of relativeDir.split("/").filter(Boolean)) {
      base += encodeURIComponent(part) + "/";
    }
    return base;
  }

  function request(method, url, headers, body, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      for (const [name, value] of Object.entries({ ...TUS, ...headers })) {
        xhr.setRequestHeader(name, value);
      }
      if (onProgress) xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => resolve(xhr);
      xhr.onerror = () => reject(new Error("the connection dropped"));
      xhr.ontimeout = () => reject(new Error("the server did not answer in time"));
      xhr.send(body === undefined ? null : body);
    });
  }

  function row(label, size) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = label;
    const bar = document.createElement("progress");
    bar.max = size || 1;
    bar.value = 0;
    const note = document.createElement("span");
    note.className = "note";
    item.append(name, bar, note);
    list.append(item);
    return { bar, note, item };
  }

  function showTotal() {
    total.max = grandSize || 1;
    total.value = grandDone;
    totalText.textContent = `${grandDone} of ${grandSize} bytes`;
  }

  async function uploadOne(file, relativePath) {
    const slash = relativePath.lastIndexOf("/");
    const dir = slash >= 0 ? relativePath.slice(0, slash) : "";
    const name = slash >= 0 ? relativePath.slice(slash + 1) : relativePath;
    const key = `ft-tus:${location.host}:${folderUrl(dir)}:${name}:${file.size}:${file.lastModified}`;
    const shown = row(relativePath, file.size);
    let url = localStorage.getItem(key);
    let offset = 0;
    if (url) {
      const head = await request("HEAD", url, {});
      if (head.status >= 200 && head.status < 300) {
        offset = parseInt(head.getResponseHeader("Upload-Offset") || "0", 10);
        shown.note.textContent = offset ? `resuming from ${offset} bytes` : "";
      } else {
        url = null;
        localStorage.removeItem(key);
      }
    }
    if (!url) {
      const created = await request("POST", folderUrl(dir), {
        "Upload-Length": String(file.size),
        "Upload-Metadata": `filename ${b64(name)}`,
      });
      if (created.status !== 201) throw new Error(created.responseText.trim() || `HTTP ${created.status}`);
      url = new URL(created.getResponseHeader("Location"), location.href).pathname;
      localStorage.setItem(key, url);
    }
    grandDone += offset;
    const resumedAt = offset;
    let digest = "";
    while (offset < file.size || (file.size === 0 && !digest)) {
      const chunk = file.slice(offset, Math.min(file.size, offset + CHUNK));
      const before = offset;
      const answer = await request("PATCH", url, {
        "Upload-Offset": String(offset),
        "Content-Type": "application/offset+octet-stream",
      }, chunk, (loaded) => {
        shown.bar.value = before + loaded;
        total.value = grandDone + loaded;
      });
      if (answer.status !== 204 && answer.status !== 200) {
        throw new Error(answer.responseText.trim() || `HTTP ${answer.status}`);
      }
      offset = parseInt(answer.getResponseHeader("Upload-Offset") || String(offset + chunk.size), 10);
      grandDone += offset - before;
      shown.bar.value = offset;
      showTotal();
      digest = hexOfReprDigest(answer.getResponseHeader("Repr-Digest"));
      if (file.size === 0) break;
    }
    localStorage.removeItem(key);
    shown.item.classList.add("done");
    const resumed = resumedAt ? ` (resumed at ${resumedAt} bytes)` : "";
    shown.note.textContent = (digest ? `SHA-256 ${digest}` : "done") + resumed;
  }

  async function uploadAll(entries) {
    for (const [file] of entries) grandSize += file.size;
    showTotal();
    for (const [file, path] of entries) {
      try {
        await uploadOne(file, path);
      } catch (error) {
        const failed = row(path, 1);
        failed.item.classList.add("failed");
        failed.note.textContent = `not uploaded: ${error.message}; choose it again to resume`;
      }
    }
    const refresh = document.getElementById("refresh");
    refresh.hidden = false;
  }

  function fromInput(input) {
    const entries = Array.from(input.files, (file) => [file, file.webkitRelativePath || file.name]);
    input.value = "";
    uploadAll(entries);
  }

  picker.addEventListener("change", () => fromInput(picker));
  folderPicker.addEventListener("change", () => fromInput(folderPicker));

  function readEntry(entry, prefix) {
    return new Promise((resolve) => {
      if (entry.isFile) {
        entry.file((file) => resolve([[file, prefix + file.name]]), () => resolve([]));
        return;
      }
      const reader = entry.createReader();
      const found = [];
      const more = () => reader.readEntries(async (batch) => {
        if (!batch.length) {
          const nested = await Promise.all(found.map((child) => readEntry(child, `${prefix}${entry.name}/`)));
          resolve(nested.flat());
          return;
        }
        found.push(...batch);
        more();
      }, () => resolve([]));
      more();
    });
  }

  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dropping");
  });
  document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
  document.addEventListener("drop", async (event) => {
    event.preventDefault();
    document.body.classList.remove("dropping");
    const items = Array.from(event.dataTransfer.items || []);
    const entries = items.map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    const files = entries.length
      ? (await Promise.all(entries.map((entry) => readEntry(entry, "")))).flat()
      : Array.from(event.dataTransfer.files, (file) => [file, file.name]);
    uploadAll(files);
  });
})();
