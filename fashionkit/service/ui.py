"""The browser page: one HTML document and one script, no build step, served by the app.

They are kept here as strings (not package data files) so that any install of the package
serves them. The script talks only to the REST API with the bearer token kept in
``sessionStorage``; everything from the server is inserted as text (``textContent``), never as
HTML, and images that need the token are fetched and shown as ``blob:`` URLs. The page is
served with a Content-Security-Policy that allows no inline script.
"""

__all__ = ["PAGE", "SCRIPT", "CSP"]

CSP = (
    "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fashionkit wardrobe</title>
<style>
  body { font: 15px system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em; }
  section { border-top: 1px solid #ddd; padding: .5em 0 1em; }
  .hidden { display: none; }
  .row { display: flex; flex-wrap: wrap; gap: .5em; align-items: center; }
  .gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr));
             gap: .8em; }
  .card { border: 1px solid #ccc; border-radius: 6px; padding: .5em; }
  .card img { max-width: 100%; max-height: 160px; display: block; margin: auto; }
  .swatch { display: inline-block; width: 1em; height: 1em; border: 1px solid #888;
            vertical-align: middle; }
  .pictures img { max-width: 48%; }
  .error { color: #b00020; white-space: pre-wrap; }
  label { font-size: 13px; }
  input[type=text] { width: 100%; box-sizing: border-box; }
</style>
<script src="/ui.js" defer></script>
</head>
<body>
<h1>fashionkit wardrobe</h1>
<p id="error" class="error" role="alert"></p>

<section id="login">
  <h2>Log in</h2>
  <form id="login-form" class="row">
    <input id="name" name="name" placeholder="name" autocomplete="username" required>
    <input id="password" name="password" type="password" placeholder="password"
           autocomplete="current-password" required>
    <button id="login-button" type="submit">Log in</button>
    <button id="register-button" type="button">Create account</button>
  </form>
</section>

<div id="app" class="hidden">
  <p class="row">Logged in as <b id="me"></b> <button id="logout" type="button">Log out</button></p>

  <section id="photos">
    <h2>Add a photo</h2>
    <form id="upload-form" class="row">
      <input id="photo-file" type="file" accept="image/jpeg,image/png,image/webp" required>
      <button type="submit">Upload</button>
      <span id="photo-status"></span>
    </form>
    <div id="photo-pictures" class="pictures"></div>
  </section>

  <section id="wardrobe">
    <h2>Wardrobe</h2>
    <form id="filter-form" class="row">
      <input id="filter-category" placeholder="category (e.g. pants)">
      <select id="filter-season"><option value="">any season</option>
        <option>spring</option><option>summer</option><option>autumn</option>
        <option>winter</option></select>
      <button type="submit">Filter</button>
    </form>
    <form id="add-form" class="row">
      <input id="add-id" placeholder="new item id" required>
      <input id="add-category" placeholder="category" required>
      <input id="add-color" type="color" value="#1f2a44">
      <button type="submit">Add item</button>
    </form>
    <div id="gallery" class="gallery"></div>
  </section>

  <section id="outfits">
    <h2>Outfits</h2>
    <form id="outfit-form" class="row">
      <select id="outfit-season"><option value="">any season</option>
        <option>spring</option><option>summer</option><option>autumn</option>
        <option>winter</option></select>
      <input id="outfit-temperature" type="number" step="1" placeholder="°C">
      <input id="outfit-occasion" placeholder="occasion (work, party …)">
      <button type="submit">Suggest</button>
    </form>
    <ol id="outfit-list"></ol>
  </section>
</div>
</body>
</html>
"""

SCRIPT = r"""'use strict';
const $ = (id) => document.getElementById(id);
const TAGS = ['colors', 'season', 'material', 'pattern', 'brand', 'trend', 'occasion'];
const LISTS = new Set(['colors', 'season', 'occasion']);
let token = sessionStorage.getItem('fashionkit-token');

function showError(message) { $('error').textContent = message || ''; }

function describe(payload, status) {
  if (payload && typeof payload.detail === 'string') return payload.detail;
  if (payload && Array.isArray(payload.detail)) {
    return payload.detail.map((d) => `${(d.loc || []).join('.')}: ${d.msg}`).join('\n');
  }
  return `request failed (${status})`;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = `Bearer ${token}`;
  if (options.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401 && token) { logout(); }
  const type = response.headers.get('content-type') || '';
  const payload = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new Error(describe(payload, response.status));
  return payload;
}

async function blobUrl(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}

function element(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

async function login(event) {
  event.preventDefault();
  showError();
  const form = new URLSearchParams({ username: $('name').value, password: $('password').value });
  try {
    const answer = await api('/api/token', { method: 'POST', body: form });
    token = answer.access_token;
    sessionStorage.setItem('fashionkit-token', token);
    await start();
  } catch (err) { showError(err.message); }
}

async function register() {
  showError();
  try {
    await api('/api/users', { method: 'POST',
      json: { name: $('name').value, password: $('password').value } });
    await login(new Event('submit'));
  } catch (err) { showError(err.message); }
}

function logout() {
  token = null;
  sessionStorage.removeItem('fashionkit-token');
  $('app').classList.add('hidden');
  $('login').classList.remove('hidden');
}

async function start() {
  const me = await api('/api/me');
  $('me').textContent = me.name;
  $('login').classList.add('hidden');
  $('app').classList.remove('hidden');
  await loadItems();
}

function tagValue(item, tag) {
  const value = item[tag];
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

async function itemCard(item) {
  const card = element('div', null, { class: 'card', 'data-item': item.id });
  card.appendChild(element('b', item.id));
  card.appendChild(element('div', `${item.category_name} (${item.supercategory})`));
  const url = await blobUrl(`/api/items/${encodeURIComponent(item.id)}/cutout`);
  if (url) card.appendChild(element('img', null, { src: url, alt: item.id }));
  const swatches = element('div');
  for (const colour of item.colors || []) {
    const swatch = element('span', null, { class: 'swatch', title: colour });
    swatch.style.background = colour;
    swatches.appendChild(swatch);
  }
  card.appendChild(swatches);
  const form = element('form', null, { class: 'tags' });
  for (const tag of TAGS) {
    const label = element('label', tag);
    const input = element('input', null, { type: 'text', name: tag });
    input.value = tagValue(item, tag);
    label.appendChild(input);
    form.appendChild(label);
  }
  form.appendChild(element('button', 'Save', { type: 'submit' }));
  const remove = element('button', 'Remove', { type: 'button' });
  form.appendChild(remove);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const changes = {};
    for (const tag of TAGS) {
      const text = form.elements[tag].value.trim();
      if (!text) { changes[tag] = null; continue; }
      changes[tag] = LISTS.has(tag) ? text.split(',').map((s) => s.trim()).filter(Boolean) : text;
    }
    try {
      await api(`/api/items/${encodeURIComponent(item.id)}`, { method: 'PATCH', json: changes });
      showError();
      await loadItems();
    } catch (err) { showError(err.message); }
  });
  remove.addEventListener('click', async () => {
    try {
      await api(`/api/items/${encodeURIComponent(item.id)}`, { method: 'DELETE' });
      await loadItems();
    } catch (err) { showError(err.message); }
  });
  card.appendChild(form);
  return card;
}

async function loadItems(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams();
  if ($('filter-category').value.trim()) params.set('category', $('filter-category').value.trim());
  if ($('filter-season').value) params.set('season', $('filter-season').value);
  try {
    const items = await api(`/api/items?${params}`);
    const cards = await Promise.all(items.map(itemCard));
    $('gallery').replaceChildren(...cards);
  } catch (err) { showError(err.message); }
}

async function addItem(event) {
  event.preventDefault();
  try {
    await api('/api/items', { method: 'POST', json: {
      id: $('add-id').value, category: $('add-category').value, colors: [$('add-color').value] } });
    $('add-id').value = '';
    showError();
    await loadItems();
  } catch (err) { showError(err.message); }
}

async function upload(event) {
  event.preventDefault();
  const file = $('photo-file').files[0];
  if (!file) return;
  const body = new FormData();
  body.append('file', file);
  try {
    let job = await api('/api/photos', { method: 'POST', body });
    $('photo-status').textContent = job.status;
    while (job.status === 'queued' || job.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 700));
      job = await api(job.url);
      $('photo-status').textContent = job.status;
    }
    if (job.status === 'failed') throw new Error(job.error);
    $('photo-status').textContent = job.skipped ? 'already in the wardrobe'
      : `${job.items.length} item(s) found`;
    const pictures = [];
    for (const url of [job.overlay_url, job.supercategories_url]) {
      if (!url) continue;
      const src = await blobUrl(url);
      if (src) pictures.push(element('img', null, { src, alt: url.split('/').pop() }));
    }
    $('photo-pictures').replaceChildren(...pictures);
    await loadItems();
  } catch (err) { showError(err.message); }
}

async function suggest(event) {
  event.preventDefault();
  const params = new URLSearchParams({ n: '5' });
  if ($('outfit-season').value) params.set('season', $('outfit-season').value);
  if ($('outfit-temperature').value) params.set('temperature', $('outfit-temperature').value);
  if ($('outfit-occasion').value.trim()) params.set('occasion', $('outfit-occasion').value.trim());
  try {
    const outfits = await api(`/api/outfits?${params}`);
    const rows = outfits.map((outfit) => {
      const row = element('li', null, { class: 'outfit' });
      row.appendChild(element('b', outfit.items.join(' + ')));
      row.appendChild(element('div', outfit.explanation));
      for (const kind of ['like', 'dislike', 'wore']) {
        const button = element('button', kind, { type: 'button', 'data-kind': kind });
        button.addEventListener('click', async () => {
          try {
            await api('/api/outfits/feedback', { method: 'POST',
              json: { items: outfit.items, kind } });
            button.textContent = `${kind} ✓`;
          } catch (err) { showError(err.message); }
        });
        row.appendChild(button);
      }
      return row;
    });
    if (!rows.length) rows.push(element('li', 'No outfit fits (need a top and a bottom, or a one piece).'));
    $('outfit-list').replaceChildren(...rows);
  } catch (err) { showError(err.message); }
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('register-button').addEventListener('click', register);
  $('logout').addEventListener('click', logout);
  $('upload-form').addEventListener('submit', upload);
  $('filter-form').addEventListener('submit', loadItems);
  $('add-form').addEventListener('submit', addItem);
  $('outfit-form').addEventListener('submit', suggest);
  if (token) start().catch(() => logout());
});
"""
