'use strict';
const $ = (id) => document.getElementById(id);
const TAGS = ['category', 'colors', 'season', 'material', 'pattern', 'brand', 'trend', 'occasion'];
const LISTS = new Set(['colors', 'season', 'occasion']);
let token = sessionStorage.getItem('fashionkit-token');
let cutouts = new Map();  // item id -> blob: URL of its cut-out (null: it has none)

function showError(message, where) { (where || $('error')).textContent = message || ''; }

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

// Every entry of a paginated list: its pages, following each answer's Link: <...>; rel="next".
async function apiAll(path) {
  const entries = [];
  let next = path;
  while (next) {
    const response = await fetch(next, { headers: { Authorization: `Bearer ${token}` } });
    if (response.status === 401 && token) { logout(); }
    const payload = await response.json();
    if (!response.ok) throw new Error(describe(payload, response.status));
    entries.push(...payload);
    const link = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get('link') || '');
    next = link ? link[1] : null;
  }
  return entries;
}

async function blobUrl(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) return null;
  return URL.createObjectURL(await response.blob());
}

async function cutoutUrl(item) {
  // item: the item JSON, or an id of an item found in a photo (which has a cut-out).
  const itemId = typeof item === 'string' ? item : item.id;
  const path = typeof item === 'string'
    ? `/api/items/${encodeURIComponent(itemId)}/cutout` : item.cutout_url;
  if (!path) return null;
  if (!cutouts.has(itemId)) cutouts.set(itemId, blobUrl(path));
  return cutouts.get(itemId);
}

function forgetCutouts() {
  for (const pending of cutouts.values()) {
    pending.then((url) => { if (url) URL.revokeObjectURL(url); });
  }
  cutouts = new Map();
}

function element(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function figure(src, caption, attrs = {}) {
  const node = element('figure', null, attrs);
  node.appendChild(element('img', null, { src, alt: caption }));
  node.appendChild(element('figcaption', caption));
  return node;
}

async function login(event) {
  if (event) event.preventDefault();
  showError();
  const form = new URLSearchParams({ username: $('name').value, password: $('password').value });
  try {
    const answer = await api('/api/token', { method: 'POST', body: form });
    token = answer.access_token;
    sessionStorage.setItem('fashionkit-token', token);
    $('password').value = '';
    await start();
  } catch (err) { showError(err.message); }
}

async function register() {
  showError();
  try {
    await api('/api/users', { method: 'POST',
      json: { name: $('name').value, password: $('password').value } });
    await login();
  } catch (err) { showError(err.message); }
}

function clearPage() {
  // Nothing of the last person's wardrobe stays in the page for the next one.
  for (const id of ['gallery', 'photo-pictures', 'photo-items', 'photo-notes', 'photo-list',
                    'outfit-list']) {
    $(id).replaceChildren();
  }
  for (const id of ['me', 'photo-status', 'gallery-count', 'password-status']) {
    $(id).textContent = '';
  }
  for (const form of ['upload-form', 'filter-form', 'add-form', 'outfit-form',
                      'password-form']) {
    $(form).reset();
  }
  $('password-change').open = false;
  clearOutfitPhoto();
  forgetCutouts();
  clearModel();
}

async function changePassword(event) {
  event.preventDefault();
  showError();
  $('password-status').textContent = '';
  if ($('new-password').value !== $('repeat-password').value) {
    showError('the new password and its repetition differ');
    return;
  }
  try {
    // The server ends every earlier token of the account, this page's too, and answers with a
    // new one for this page.
    const answer = await api('/api/me/password', { method: 'POST', json: {
      current_password: $('current-password').value, new_password: $('new-password').value } });
    token = answer.access_token;
    sessionStorage.setItem('fashionkit-token', token);
    for (const id of ['current-password', 'new-password', 'repeat-password']) $(id).value = '';
    $('password-status').textContent = 'Password changed; every other login has ended.';
  } catch (err) { showError(err.message); }
}

function logout() {
  // Ends this login's tokens on the server too (every device's), not only on this page.
  if (token) fetch('/api/logout', { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
  token = null;
  sessionStorage.removeItem('fashionkit-token');
  clearPage();
  $('app').classList.add('hidden');
  $('login').classList.remove('hidden');
}

async function loadCategories() {
  const categories = await api('/api/categories');
  $('categories').replaceChildren(...categories.map((c) => element('option', null,
    { value: c.short_name, label: `${c.name} (${c.supercategory})` })));
}

async function start() {
  const me = await api('/api/me');
  $('me').textContent = me.name;
  $('password-user').value = me.name;  // for password managers, beside the new password
  $('login').classList.add('hidden');
  $('app').classList.remove('hidden');
  await Promise.all([loadItems(), loadPhotos(), loadCategories(), loadModel()]);
}

// A tag's value as the text of its input (a list's words comma-separated), and back.
function tagText(value) {
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function parseTag(tag, text) {
  return LISTS.has(tag) ? text.split(',').map((s) => s.trim()).filter(Boolean) : text;
}

function tagValue(item, tag) {
  return tag === 'category' ? item.category_name : tagText(item[tag]);
}

async function itemCard(item) {
  const card = element('div', null, { class: 'card', 'data-item': item.id });
  card.appendChild(element('b', item.id, { class: 'item-id' }));
  card.appendChild(element('div', `${item.category_name} (${item.supercategory})`,
    { class: 'meta category' }));
  const url = await cutoutUrl(item);
  if (url) {
    card.appendChild(element('img', null, { src: url, alt: `cut-out of ${item.id}`,
      class: 'cutout' }));
  } else if ((item.colors || []).length) {
    const swatch = element('span', null, { class: 'swatch big', title: item.colors[0] });
    swatch.style.background = item.colors[0];
    card.appendChild(swatch);
  }
  const swatches = element('div');
  for (const colour of item.colors || []) {
    const swatch = element('span', null, { class: 'swatch', title: colour });
    swatch.style.background = colour;
    swatches.appendChild(swatch);
  }
  card.appendChild(swatches);
  const seasons = item.season || [];
  const summary = [seasons.length ? seasons.join(', ') : 'any season', item.material,
    item.pattern, item.brand, item.trend, (item.occasion || []).join(', ')].filter(Boolean);
  card.appendChild(element('div', summary.join(' · '), { class: 'meta tags-summary' }));
  const times = item.times_worn || 0;
  card.appendChild(element('div', times
    ? `worn ${times === 1 ? 'once' : `${times} times`} · last worn ${item.last_worn}`
    : 'never worn', { class: 'meta worn' }));
  const editor = element('details', null, { class: 'edit' });
  editor.appendChild(element('summary', 'Edit tags'));
  const form = element('form', null, { class: 'tags' });
  for (const tag of TAGS) {
    const label = element('label', tag);
    const input = element('input', null, { type: 'text', name: tag });
    if (tag === 'category') input.setAttribute('list', 'categories');
    input.value = tagValue(item, tag);
    label.appendChild(input);
    form.appendChild(label);
  }
  form.appendChild(element('button', 'Save', { type: 'submit', class: 'save' }));
  const remove = element('button', 'Remove', { type: 'button', class: 'remove' });
  form.appendChild(remove);
  const problem = element('div', null, { class: 'error', role: 'alert' });
  form.appendChild(problem);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const changes = {};
    for (const tag of TAGS) {
      const text = form.elements[tag].value.trim();
      if (tag === 'category' && text === item.category_name) continue;
      if (!text) { changes[tag] = null; continue; }
      changes[tag] = parseTag(tag, text);
    }
    try {
      await api(`/api/items/${encodeURIComponent(item.id)}`, { method: 'PATCH', json: changes });
      showError(null, problem);
      await loadItems();
    } catch (err) { showError(err.message, problem); }
  });
  remove.addEventListener('click', async () => {
    try {
      await api(`/api/items/${encodeURIComponent(item.id)}`, { method: 'DELETE' });
      await loadItems();
    } catch (err) { showError(err.message, problem); }
  });
  editor.appendChild(form);
  card.appendChild(editor);
  return card;
}

async function loadItems(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams();
  const category = $('filter-category').value.trim();
  const occasion = $('filter-occasion').value.trim();
  if (category) params.set('category', category);
  if ($('filter-season').value) params.set('season', $('filter-season').value);
  if (occasion) params.set('occasion', occasion);
  try {
    const items = await apiAll(`/api/items?${params}`);
    const cards = await Promise.all(items.map(itemCard));
    $('gallery').replaceChildren(...cards);
    $('gallery-count').textContent = `${items.length} item(s)`;
    showError();
  } catch (err) { showError(err.message); }
}

async function clearFilter() {
  $('filter-form').reset();
  await loadItems();
}

async function addItem(event) {
  event.preventDefault();
  try {
    await api('/api/items', { method: 'POST', json: {
      id: $('add-id').value, category: $('add-category').value, colors: [$('add-color').value] } });
    $('add-id').value = '';
    $('add-category').value = '';
    showError();
    await loadItems();
  } catch (err) { showError(err.message); }
}

function jobSummary(job) {
  if (job.status === 'failed') return `failed: ${job.error}`;
  if (job.status !== 'done') return job.status;
  return job.skipped ? 'already in the wardrobe' : `${job.items.length} item(s) found`;
}

async function showJob(job) {
  $('photo-status').textContent = jobSummary(job);
  const pictures = [];
  for (const [url, caption, kind] of [
    [job.overlay_url, 'Items found, labelled (Fig. 8)', 'overlay'],
    [job.supercategories_url, 'By super category (Fig. 9)', 'supercategories']]) {
    if (!url) continue;
    const src = await blobUrl(url);
    if (src) pictures.push(figure(src, caption, { 'data-picture': kind }));
  }
  $('photo-pictures').replaceChildren(...pictures);
  const found = [];
  const items = (job.items || []).length ? await apiAll('/api/items') : [];
  const byId = new Map(items.map((item) => [item.id, item]));
  for (const itemId of job.items || []) {
    const item = byId.get(itemId);  // gone when removed since
    const src = item ? await cutoutUrl(item) : null;
    if (src) found.push(figure(src, item.category_name, { 'data-item': itemId, title: itemId }));
  }
  $('photo-items').replaceChildren(...found);
  $('photo-notes').replaceChildren(...(job.duplicates || []).map(duplicateNote));
}

// "X looks like Y", and a button to say it is Y photographed again: X is merged into Y (its
// place in this photo and its picture stay Y's, for recognition and for teaching the model).
// X may look like several items: once merged, its other notes say where it went.
function duplicateNote(d) {
  const note = element('li',
    `${d.new} looks like ${d.existing} (similarity ${d.appearance.toFixed(2)}) `,
    { 'data-duplicate': d.new, 'data-existing': d.existing });
  const same = element('button', 'Same item', { type: 'button' });
  same.addEventListener('click', async () => {
    try {
      await api(`/api/items/${encodeURIComponent(d.existing)}/merge`,
        { method: 'POST', json: { drop: d.new } });
      for (const other of $('photo-notes').querySelectorAll('li')) {
        if (other.dataset.duplicate === d.new) {
          other.replaceChildren(`${d.new} merged into ${d.existing}`);
        }
      }
      await loadItems();
    } catch (err) {
      showError(err.message);
    }
  });
  note.appendChild(same);
  return note;
}

async function loadPhotos() {
  const jobs = await apiAll('/api/photos');
  const rows = jobs.slice().reverse().map((job) => {
    const row = element('li', `${job.created_at.replace('T', ' ')}: ${jobSummary(job)} `,
      { 'data-job': job.id });
    if (job.overlay_url) {
      const show = element('button', 'Show', { type: 'button' });
      show.addEventListener('click', () => showJob(job).catch((err) => showError(err.message)));
      row.appendChild(show);
    }
    return row;
  });
  $('photo-list').replaceChildren(...rows);
}

async function upload(event) {
  event.preventDefault();
  const file = $('photo-file').files[0];
  if (!file) return;
  const body = new FormData();
  body.append('file', file);
  showError();
  $('upload-button').disabled = true;
  try {
    let job = await api('/api/photos', { method: 'POST', body });
    $('photo-status').textContent = job.status;
    while (job.status === 'queued' || job.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 500));
      job = await api(job.url);
      $('photo-status').textContent = job.status;
    }
    if (job.status === 'failed') throw new Error(job.error);
    await showJob(job);
    await Promise.all([loadItems(), loadPhotos()]);
  } catch (err) {
    $('photo-status').textContent = '';
    showError(err.message);
  } finally {
    $('upload-button').disabled = false;
  }
}

async function outfitPiece(itemId, item) {
  const label = item ? `${itemId} (${item.category_name})` : itemId;
  const piece = element('figure', null, { 'data-item': itemId });
  const src = item ? await cutoutUrl(item) : null;
  if (src) {
    piece.appendChild(element('img', null, { src, alt: label }));
  } else if (item && (item.colors || []).length) {
    const swatch = element('span', null, { class: 'swatch' });
    swatch.style.background = item.colors[0];
    piece.appendChild(swatch);
  }
  piece.appendChild(element('figcaption', label));
  return piece;
}

async function suggest(event) {
  event.preventDefault();
  const params = new URLSearchParams({ n: '5' });
  if ($('outfit-season').value) params.set('season', $('outfit-season').value);
  if ($('outfit-temperature').value) params.set('temperature', $('outfit-temperature').value);
  if ($('outfit-occasion').value.trim()) params.set('occasion', $('outfit-occasion').value.trim());
  if ($('outfit-not-worn').value) params.set('not_worn_days', $('outfit-not-worn').value);
  if ($('outfit-rarely').checked) params.set('favour_rarely_worn', 'true');
  try {
    const [outfits, items] = await Promise.all([api(`/api/outfits?${params}`), apiAll('/api/items')]);
    const byId = new Map(items.map((item) => [item.id, item]));
    const rows = await Promise.all(outfits.map(async (outfit) => {
      const row = element('li', null, { class: 'outfit', 'data-outfit': outfit.items.join(' ') });
      const pieces = element('div', null, { class: 'pieces' });
      for (const itemId of outfit.items) pieces.appendChild(await outfitPiece(itemId, byId.get(itemId)));
      row.appendChild(pieces);
      row.appendChild(element('div', outfit.explanation, { class: 'explanation' }));
      const problem = element('div', null, { class: 'error', role: 'alert' });
      for (const kind of ['like', 'dislike', 'wore']) {
        const button = element('button', kind, { type: 'button', 'data-kind': kind });
        button.addEventListener('click', async () => {
          try {
            await api('/api/outfits/feedback', { method: 'POST',
              json: { items: outfit.items, kind } });
            button.textContent = `${kind} ✓`;
            button.disabled = true;
            showError(null, problem);
            if (kind === 'wore') await loadItems();
          } catch (err) { showError(err.message, problem); }
        });
        row.appendChild(button);
      }
      row.appendChild(problem);
      return row;
    }));
    if (!rows.length) {
      rows.push(element('li', 'No outfit fits (need a top and a bottom, or a one piece).'));
    }
    $('outfit-list').replaceChildren(...rows);
    showError();
  } catch (err) { showError(err.message); }
}

// BEGIN today's outfit (wear log)
function clearOutfitPhoto() {
  for (const id of ['outfit-photo-picture', 'outfit-recognised', 'outfit-new']) {
    $(id).replaceChildren();
  }
  $('outfit-photo-status').textContent = '';
  $('outfit-photo-form').reset();
}

function outfitSummary(job) {
  if (job.status === 'failed') return `failed: ${job.error}`;
  if (job.status !== 'done') return job.status;
  return `worn on ${job.worn_on}: ${recognisedItems(job).length} of your items recognised, `
    + `${job.new.length} new`;
}

// Each recognised item once: the two shoes of a pair are two detections of one item.
function recognisedItems(job) {
  const seen = new Set();
  return job.recognised.filter((found) => !seen.has(found.item) && seen.add(found.item));
}

// Suggested tags of an offered item (learned from the person's labelled items, or "your
// usual" value where no visual cue was learned), each in an input to confirm or edit.
function suggestedTags(suggestions) {
  const fields = Object.keys(suggestions);
  if (!fields.length) return null;
  const box = element('div', null, { class: 'suggested' });
  box.appendChild(element('div', 'Suggested tags', { class: 'meta' }));
  for (const field of fields) {
    const s = suggestions[field];
    const label = element('label', null, { 'data-tag': field, 'data-source': s.source });
    label.appendChild(element('span', `${field} `));
    const input = element('input', null, { type: 'text', name: field });
    input.value = tagText(s.value);
    label.appendChild(input);
    const why = s.source === 'learned' ? 'learned' : 'your usual';
    label.appendChild(element('span', ` ${Math.round(s.confidence * 100)}% · ${why}`,
      { class: 'confidence' }));
    box.appendChild(label);
  }
  return box;
}

function confirmedTags(box) {
  const tags = {};
  for (const input of box.querySelectorAll('input')) {
    const text = input.value.trim();
    if (!text) { tags[input.name] = null; continue; }
    tags[input.name] = parseTag(input.name, text);
  }
  return tags;
}

async function offerFigure(job, offer) {
  const src = offer.cutout_url ? await blobUrl(offer.cutout_url) : null;
  const node = figure(src || '', `new ${offer.category_name}`,
    { class: 'offer', 'data-offer': String(offer.index), title: offer.id });
  const problem = element('div', null, { class: 'error', role: 'alert' });
  const suggested = offer.added ? null : suggestedTags(offer.suggested_tags || {});
  if (suggested) node.appendChild(suggested);
  const add = element('button', offer.added ? 'Added' : suggested ? 'Add with these tags' : 'Add',
    { type: 'button', class: 'add' });
  add.disabled = Boolean(offer.added);
  add.addEventListener('click', async () => {
    try {
      // The tags as the person left them: the suggestions confirmed, edited, or emptied.
      const options = { method: 'POST' };
      if (suggested) options.json = { tags: confirmedTags(suggested) };
      const item = await api(offer.accept_url, options);
      add.textContent = 'Added';
      add.disabled = true;
      if (suggested) {
        for (const input of suggested.querySelectorAll('input')) input.disabled = true;
      }
      for (const other of node.querySelectorAll('button.is-mine')) other.disabled = true;
      node.setAttribute('data-item', item.id);
      showError(null, problem);
      await loadItems();
    } catch (err) { showError(err.message, problem); }
  });
  node.appendChild(add);
  // Recognition missed it: the closest of your items may be the one.
  const closest = (offer.candidates || [])[0];
  if (closest && !offer.added) {
    const mine = element('button', `It's ${closest.item}`,
      { type: 'button', class: 'is-mine', 'data-candidate': closest.item });
    mine.addEventListener('click', async () => {
      try {
        await api(offer.is_url + encodeURIComponent(closest.item), { method: 'POST' });
        mine.textContent = `${closest.item} ✓`;
        mine.disabled = true;
        add.disabled = true;
        node.setAttribute('data-item', closest.item);
        showError(null, problem);
        await loadItems();
      } catch (err) { showError(err.message, problem); }
    });
    node.appendChild(mine);
  }
  node.appendChild(problem);
  return node;
}

async function showOutfitJob(job) {
  $('outfit-photo-status').textContent = outfitSummary(job);
  const picture = job.overlay_url ? await blobUrl(job.overlay_url) : null;
  $('outfit-photo-picture').replaceChildren(
    ...(picture ? [figure(picture, "Today's outfit, detected", { 'data-picture': 'outfit' })] : []));
  const items = job.recognised.length ? await apiAll('/api/items') : [];
  const byId = new Map(items.map((item) => [item.id, item]));
  const recognised = [];
  for (const found of recognisedItems(job)) {
    const item = byId.get(found.item);  // gone when removed since
    const src = item ? await cutoutUrl(item) : null;
    const node = figure(src || '', `${found.item} (similarity ${found.similarity.toFixed(2)})`,
      { class: 'recognised', 'data-item': found.item });
    recognised.push(node);
  }
  $('outfit-recognised').replaceChildren(...recognised);
  $('outfit-new').replaceChildren(...await Promise.all(job.new.map((o) => offerFigure(job, o))));
}

async function uploadOutfitPhoto(event) {
  event.preventDefault();
  const file = $('outfit-photo-file').files[0];
  if (!file) return;
  const body = new FormData();
  body.append('file', file);
  if ($('outfit-photo-day').value) body.append('on', $('outfit-photo-day').value);
  showError();
  $('outfit-photo-button').disabled = true;
  try {
    let job = await api('/api/outfit-photos', { method: 'POST', body });
    $('outfit-photo-status').textContent = job.status;
    while (job.status === 'queued' || job.status === 'running') {
      await new Promise((resolve) => setTimeout(resolve, 500));
      job = await api(job.url);
      $('outfit-photo-status').textContent = job.status;
    }
    if (job.status === 'failed') throw new Error(job.error);
    await showOutfitJob(job);
    await loadItems();
  } catch (err) {
    $('outfit-photo-status').textContent = '';
    showError(err.message);
  } finally {
    $('outfit-photo-button').disabled = false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('outfit-photo-form').addEventListener('submit', uploadOutfitPhoto);
});
// END today's outfit (wear log)

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('register-button').addEventListener('click', register);
  $('logout').addEventListener('click', logout);
  $('password-form').addEventListener('submit', changePassword);
  $('upload-form').addEventListener('submit', upload);
  $('filter-form').addEventListener('submit', loadItems);
  $('filter-clear').addEventListener('click', clearFilter);
  $('add-form').addEventListener('submit', addItem);
  $('outfit-form').addEventListener('submit', suggest);
  $('model-teach').addEventListener('click', teachModel);
  $('model-cancel').addEventListener('click', cancelTeaching);
  $('model-rollback').addEventListener('click', rollbackModel);
  if (token) start().catch(() => logout());
});

// -- My model: the person's own detector (routes: /api/model) ---------------------------------
let modelJob = null;  // the teaching job this page follows (null: none)

function versionText(v) {
  return `version ${v.version} (${v.photos} photos, ${v.minutes} min, ${v.created_at.replace('T', ' ')})`;
}

function clearModel() {
  modelJob = null;
  $('model-versions').replaceChildren();
  for (const id of ['model-in-use', 'model-photos', 'model-status']) $(id).textContent = '';
  $('model-progress').classList.add('hidden');
  $('model-cancel').classList.add('hidden');
}

async function loadModel() {
  const status = await api('/api/model');
  $('model-in-use').textContent = status.active ? versionText(status.active) : 'the base model';
  $('model-photos').textContent =
    `${status.photos} corrected photo(s); teaching needs ${status.min_photos}`;
  $('model-teach').disabled = !status.can_teach;
  $('model-rollback').disabled = !status.active;
  $('model-versions').replaceChildren(...status.versions.slice().reverse().map((v) =>
    element('li', versionText(v) + (v.active ? ' (in use)' : ''), { 'data-version': v.version })));
  const running = status.jobs.find((j) => j.state === 'queued' || j.state === 'running');
  if (running && !modelJob) followTeaching(running).catch((err) => showError(err.message));
}

function showTeaching(job) {
  $('model-progress').value = job.progress;
  $('model-status').textContent = `${job.state}: ${job.message || ''}`;
}

async function followTeaching(job) {
  modelJob = job;
  $('model-teach').disabled = true;
  $('model-progress').classList.remove('hidden');
  $('model-cancel').classList.remove('hidden');
  showTeaching(job);
  try {
    while (modelJob && (job.state === 'queued' || job.state === 'running')) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (!modelJob) return;
      job = await api(`/api/model/jobs/${job.id}`);
      showTeaching(job);
    }
  } finally {
    if (modelJob && modelJob.id === job.id) {
      modelJob = null;
      $('model-cancel').classList.add('hidden');
      $('model-progress').classList.add('hidden');
      await loadModel();
    }
  }
}

async function teachModel() {
  showError();
  try {
    await followTeaching(await api('/api/model/teach', { method: 'POST' }));
  } catch (err) { showError(err.message); }
}

async function cancelTeaching() {
  if (!modelJob) return;
  showError();
  try {
    showTeaching(await api(`/api/model/jobs/${modelJob.id}`, { method: 'DELETE' }));
  } catch (err) { showError(err.message); }
}

async function rollbackModel() {
  showError();
  try {
    await api('/api/model/rollback', { method: 'POST' });
    await loadModel();
  } catch (err) { showError(err.message); }
}
// -- /My model ---------------------------------------------------------------------------------
