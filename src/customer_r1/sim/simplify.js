// The in-page simplifier of the browser backend (customer_r1/sim/browser.py).
//
// Installed with BrowserContext.addInitScript, so it runs in every frame before the
// page's own scripts (that is how click listeners added by the page are seen). It
// defines one object, window.__cr1, whose simplify(opts) turns the live page into
// OPeRA-style simplified HTML:
//
// * interactive elements are found: links, buttons, form fields, select options,
//   ARIA widget roles, contenteditable, focusable widgets (tabindex), and elements with
//   click handlers (attribute, property or addEventListener) or a pointer cursor of
//   their own; an element inside another interactive one is its label, not a target;
// * each gets a name by OPeRA's rule: the enclosing region's name (landmarks,
//   labelled containers, sections named by their heading, selects, iframes; regions
//   nest) + "." + its own part: a form field's own name or id, otherwise a slug of its
//   label (text lower-cased, runs outside [A-Za-z0-9_] turned into "_"), otherwise its
//   index in the region; a select's options are <select>.<value>; a name already
//   taken by a live element gets a suffix _2, _3 ...;
//   with opts.declared (our own shop, whose pages carry the recorder's names as
//   OPeRA's simplified HTML does) a name="..." the page declares is kept as it is;
// * a name, once given, stays with its element while the element is in the document
//   (later changes of text or order do not rename it), so an action can refer to a
//   name seen one step earlier; window.__cr1.get(name) finds the element again;
// * visible text is kept in reading (document) order, open shadow roots are read in
//   place (slots resolved), iframes become placeholders the caller fills from their
//   own frame; scripts, styles, templates, hidden nodes (display:none, hidden,
//   aria-hidden, opacity 0, type=hidden) are dropped, and only the attributes OPeRA
//   keeps are written (alt, title, type, value, role, aria-*, href, name);
//   password fields never show their value.
//
// Nothing here sends a request or reads anything but the DOM; the caller passes
// names as data (evaluate arguments), never as code.
(() => {
  "use strict";
  if (window.__cr1) return;

  const clickListened = new WeakSet();
  const CLICK_EVENTS = new Set(["click", "mousedown", "mouseup", "pointerdown", "pointerup", "touchstart"]);
  const nativeAdd = EventTarget.prototype.addEventListener;
  try {
    EventTarget.prototype.addEventListener = function (type, listener, options) {
      if (CLICK_EVENTS.has(type) && this instanceof Element) clickListened.add(this);
      return nativeAdd.call(this, type, listener, options);
    };
  } catch (e) { /* a frozen prototype: handlers are then found by cursor and attributes */ }

  const DROP = new Set(["script", "style", "noscript", "template", "link", "meta", "head", "title",
    "base", "svg", "canvas", "object", "embed", "audio", "video", "source", "track", "map", "param"]);
  const VOID = new Set(["img", "input", "br", "hr", "wbr", "area", "col"]);
  const TEXT_INPUTS = new Set(["", "text", "search", "email", "tel", "url", "password", "number", "date",
    "datetime-local", "month", "week", "time"]);
  const INPUT_ROLES = new Set(["textbox", "searchbox", "combobox"]);
  const CLICK_ROLES = new Set(["button", "link", "menuitem", "menuitemcheckbox", "menuitemradio", "option",
    "tab", "checkbox", "radio", "switch", "slider", "spinbutton", "treeitem", "gridcell"]);
  const REGION_ROLES = new Set(["navigation", "main", "region", "complementary", "contentinfo", "banner",
    "search", "form", "dialog", "alertdialog", "menu", "menubar", "listbox", "radiogroup", "tablist",
    "toolbar", "tabpanel", "group", "list", "tree", "grid"]);
  const LANDMARK_TAGS = { nav: "nav", main: "main", aside: "aside", header: "header", footer: "footer",
    form: "form", dialog: "dialog" };
  const STRONG_SELECTOR = "a[href], button, input:not([type=hidden]), select, textarea, summary, " +
    "[contenteditable=''], [contenteditable=true], " +
    [...CLICK_ROLES, ...INPUT_ROLES].map((r) => `[role=${r}]`).join(", ");

  const names = new WeakMap();   // element -> its name, for as long as it lives
  const byName = new Map();      // name -> element
  const frameIds = new WeakMap();
  let frameSeq = 0;

  const slug = (text) => String(text || "").toLowerCase().replace(/[^a-z0-9_]+/g, "_").replace(/^_+|_+$/g, "");
  const squash = (text) => String(text || "").replace(/\s+/g, " ").trim();
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const escAttr = (s) => esc(s).replace(/"/g, "&quot;");

  function shown(el, s) {
    // false: neither the element nor anything under it is displayed
    if (el.hidden || el.getAttribute("aria-hidden") === "true") return false;
    if (el.localName === "input" && (el.type || "").toLowerCase() === "hidden") return false;
    s = s || getComputedStyle(el);
    return s.display !== "none" && s.opacity !== "0" && s.contentVisibility !== "hidden";
  }

  function textOf(el) {
    // the visible text of an element, shadow content and image alts included
    const parts = [];
    const visit = (n) => {
      if (n.nodeType === 3) { parts.push(n.nodeValue); return; }
      if (n.nodeType !== 1) return;
      const t = n.localName;
      if (DROP.has(t) && t !== "svg") return;
      if (n !== el && !shown(n)) return;
      if (n !== el && getComputedStyle(n).visibility !== "visible" && !n.children.length) return;
      if (t === "img") { parts.push(" " + (n.getAttribute("alt") || "") + " "); return; }
      if (t === "svg") {
        const title = n.querySelector("title");
        parts.push(" " + (n.getAttribute("aria-label") || (title && title.textContent) || "") + " ");
        return;
      }
      for (const c of childrenOf(n)) visit(c);
      if (getComputedStyle(n).display !== "inline") parts.push(" ");
    };
    visit(el);
    return squash(parts.join(""));
  }

  function labelledBy(el) {
    const ids = (el.getAttribute("aria-labelledby") || "").split(/\s+/).filter(Boolean);
    const root = el.getRootNode();
    return squash(ids.map((id) => {
      const t = root.getElementById ? root.getElementById(id) : document.getElementById(id);
      return t ? t.textContent : "";
    }).join(" "));
  }

  function fieldLabel(el) {
    const own = el.getAttribute("aria-label") || labelledBy(el);
    if (own) return squash(own);
    if (el.labels && el.labels.length) return squash(el.labels[0].textContent);
    return squash(el.getAttribute("placeholder") || el.getAttribute("title") || "");
  }

  function label(el) {
    // the accessible label of a clickable element
    const aria = el.getAttribute("aria-label") || labelledBy(el);
    if (aria) return squash(aria);
    if (el.localName === "input") {
      return squash(el.value || el.getAttribute("alt") || el.getAttribute("title") || fieldLabel(el));
    }
    return textOf(el) || squash(el.getAttribute("title") || "");
  }

  function strongKind(el) {
    const t = el.localName;
    const role = (el.getAttribute("role") || "").toLowerCase();
    if (t === "a" && el.hasAttribute("href")) return "link";
    if (t === "button" || t === "summary") return "button";
    if (t === "input") {
      const type = (el.getAttribute("type") || "").toLowerCase();
      if (type === "hidden") return "";
      return TEXT_INPUTS.has(type) ? "input" : "button";
    }
    if (t === "textarea") return "input";
    if (t === "select") return "select";
    if (t === "option") return el.closest("select") ? "option" : "button";
    if (el.isContentEditable && (!el.parentElement || !el.parentElement.isContentEditable)) return "input";
    if (INPUT_ROLES.has(role)) return "input";
    if (CLICK_ROLES.has(role)) return "button";
    return "";
  }

  function weakClickable(el, style, parentCursor) {
    // a click handler or a pointer cursor of its own (not one inherited from its parent)
    if (el.hasAttribute("onclick") || typeof el.onclick === "function" || clickListened.has(el)) return true;
    const tab = el.getAttribute("tabindex");
    if (tab !== null && Number(tab) >= 0 && el.localName !== "iframe") return true;
    return style.cursor === "pointer" && parentCursor !== "pointer";
  }

  function regionOwn(el, declared) {
    // the part a container adds to the names under it, or null if it is no region
    const t = el.localName;
    const role = (el.getAttribute("role") || "").toLowerCase();
    const declaredName = el.getAttribute("name");
    if (declaredName && !strongKind(el)) return declared ? { full: declaredName } : { own: slug(declaredName) };
    const aria = el.getAttribute("aria-label") || labelledBy(el);
    const isRegion = t in LANDMARK_TAGS || REGION_ROLES.has(role) || t === "section" || t === "fieldset" || !!aria;
    if (!isRegion) return null;
    let own = slug(aria);
    if (!own && t === "fieldset") {
      const legend = el.querySelector(":scope > legend");
      if (legend) own = slug(legend.textContent);
    }
    if (!own && (t === "section" || role === "region" || t === "form" || t === "dialog")) {
      const h = el.querySelector("h1, h2, h3, h4, h5, h6, legend");
      if (h) own = slug(h.textContent).slice(0, 80).replace(/_+$/, "");
    }
    if (!own) own = slug(el.id);
    if (!own && (role === "list" || t === "section" || role === "group" || t === "fieldset")) return null;
    return { own: own || LANDMARK_TAGS[t] || role };
  }

  const join = (parent, own) => (parent ? parent + "." + own : own);

  // ------------------------------------------------------------------ cards
  // Repeated items (product cards, list items, articles) are regions named by their
  // title, as OPeRA's recorder names list items (active_item_list.<title_slug>.*), so
  // the sixth card's button is "<its title>.add_to_cart", not "add_to_cart_6". A card is
  // an article, a list item, or one of two or more sibling blocks of the same tag and
  // class, that holds a title (its one heading, else its first link with text) and at
  // least two controls (or a heading and one); outside menus and navigation; the
  // innermost such block wins (a grid row holding three cards is not itself a card).
  const HEADINGS = "h1, h2, h3, h4, h5, h6, [role=heading]";
  const NOT_CARDS = "nav, [role=navigation], [role=menu], [role=menubar], [role=listbox], [role=tree], " +
    "[role=tablist], select, datalist";

  const CARD_CLASS = /^(card|product[-_]?(card|item|tile|box)|item[-_]?card|search[-_]?result|result[-_]?item|grid[-_]?item)$/i;

  function signature(el) {
    // tag and classes, without classes that name one item (post-123, product-4711)
    const cls = [...el.classList].filter((c) => !/\d\d/.test(c)).sort();
    return el.localName + (cls.length ? "." + cls.join(".") : "");
  }

  function cardTitle(el) {
    const hs = [...el.querySelectorAll(HEADINGS)].filter((h) => shown(h) && squash(h.textContent));
    if (hs.length > 1) return null;  // a block of several items, not one
    if (hs.length === 1) return { text: textOf(hs[0]), heading: true };
    for (const a of el.querySelectorAll("a[href]")) {
      const t = textOf(a);
      if (t && shown(a)) return { text: t, heading: false };
    }
    return null;
  }

  function findCards(root) {
    // element -> the slug its card region adds
    const cards = new Map();
    if (!root) return cards;
    const candidates = new Set(root.querySelectorAll("article, li, [role=listitem], [role=article]"));
    for (const el of root.querySelectorAll("[class]")) {
      if ([...el.classList].some((c) => CARD_CLASS.test(c))) candidates.add(el);
    }
    for (const parent of [root, ...root.querySelectorAll("*")]) {
      const kids = parent.children;
      if (!kids || kids.length < 2 || parent.closest(NOT_CARDS)) continue;
      const groups = new Map();
      for (const k of kids) {
        if (DROP.has(k.localName) || k.localName === "option") continue;
        const key = signature(k);
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(k);
      }
      for (const [key, els] of groups) {  // blocks without classes: three alike at least
        if (els.length >= (key.includes(".") ? 2 : 3)) for (const e of els) candidates.add(e);
      }
    }
    const ok = [];
    for (const el of candidates) {
      if (el.closest(NOT_CARDS) || !shown(el)) continue;
      const title = cardTitle(el);
      if (!title) continue;
      const own = slug(title.text).slice(0, 80).replace(/_+$/, "");
      if (!own) continue;
      const controls = [...el.querySelectorAll(STRONG_SELECTOR)].filter((c) => shown(c)).length;
      if (controls < (title.heading ? 1 : 2)) continue;
      ok.push([el, own]);
    }
    const set = new Set(ok.map(([el]) => el));
    for (const [el, own] of ok) {
      let inner = false;
      for (const other of set) {
        if (other !== el && el.contains(other)) { inner = true; break; }
      }
      if (!inner) cards.set(el, own);
    }
    return cards;
  }

  function claim(el, base) {
    // the element's name: kept if it has one, else base, made unique among live elements
    const had = names.get(el);
    if (had !== undefined) return had;
    let name = base;
    for (let k = 2; byName.has(name) && byName.get(name) !== el; k++) name = `${base}_${k}`;
    names.set(el, name);
    byName.set(name, el);
    return name;
  }

  function ownPart(el, kind, region, counters, card) {
    let own = "";
    const t = el.localName;
    if (kind === "input" || t === "select" || t === "textarea" || t === "input") {
      own = slug(el.getAttribute("name")) || slug(el.id) || slug(fieldLabel(el));
      if (!own && kind === "input") own = slug(el.getAttribute("type") || "text") + "_input";
    }
    if (!own && card) {
      // in a card: a label that repeats the card's title ("Add “Mug” to your basket") is
      // named by the visible text; the title link itself (price and all) by the title
      const text = slug(textOf(el));
      own = slug(label(el));
      if (own.includes(card) && text && !text.includes(card)) own = text;
      else if (own.startsWith(card)) own = card;
    }
    if (!own) own = slug(label(el));
    if (!own) {
      const n = (counters.get(region) || 0) + 1;  // the recorder's child-index fallback
      counters.set(region, n);
      own = String(n);
    }
    return own;
  }

  function childrenOf(node) {
    // child nodes in rendering order: an open shadow root replaces the light children
    const root = node.shadowRoot;
    const kids = root ? root.childNodes : node.childNodes;
    const out = [];
    for (const c of kids) {
      if (c.nodeType === 1 && c.localName === "slot") {
        const assigned = c.assignedNodes({ flatten: true });
        out.push(...(assigned.length ? assigned : c.childNodes));
      } else {
        out.push(c);
      }
    }
    return out;
  }

  function attrsOf(el, name) {
    const keep = [];
    for (const a of el.attributes) {
      const k = a.name.toLowerCase();
      if (k === "alt" || k === "title" || k === "type" || k === "role" || k.startsWith("aria-")) {
        if (k === "aria-labelledby" || k === "aria-describedby" || k === "aria-controls" || k === "aria-owns") continue;
        keep.push([k, a.value]);
      } else if (k === "href") {
        if (!/^\s*javascript:/i.test(a.value)) keep.push([k, a.value]);
      }
    }
    const t = el.localName;
    if (t === "input" || t === "textarea" || t === "option" || t === "button") {
      const secret = t === "input" && (el.type || "").toLowerCase() === "password";
      const v = secret ? "" : (t === "textarea" ? el.value : (el.value !== undefined ? el.value : el.getAttribute("value")));
      if (v !== null && v !== undefined && (t !== "button" || el.hasAttribute("value"))) keep.push(["value", v]);
    }
    if (name) keep.unshift(["name", name]);
    return keep.map(([k, v]) => ` ${k}="${escAttr(v)}"`).join("");
  }

  function simplify(opts) {
    opts = opts || {};
    const declared = !!opts.declared;
    for (const [n, el] of byName) {  // names of elements that left the document are free again
      if (!el.isConnected) { byName.delete(n); names.delete(el); }
    }
    const out = [];
    const emit = opts.html !== false;  // our shop's page is read from its recorder block instead
    const push = emit ? (x) => out.push(x) : () => {};
    const elements = [];
    const frames = [];
    const counters = new Map();

    const walk = (node, ctx) => {
      for (const child of childrenOf(node)) {
        if (child.nodeType === 3) {
          if (emit && ctx.seen) {
            const s = child.nodeValue.replace(/\s+/g, " ");
            if (s.trim()) push(esc(s));
            else if (s && out.length && out[out.length - 1] !== " ") push(" ");  // keeps words apart
          }
        } else if (child.nodeType === 1) {
          visit(child, ctx);
        }
      }
    };

    const visit = (el, ctx) => {
      const t = el.localName;
      if (DROP.has(t)) return;
      if (t === "iframe" || t === "frame") {
        if (!shown(el)) return;
        let id = frameIds.get(el);
        if (id === undefined) { id = ++frameSeq; frameIds.set(el, id); }
        const own = slug(el.getAttribute("title") || el.getAttribute("aria-label") || el.getAttribute("name") || el.id) || "iframe";
        const region = claim(el, join(ctx.region, own));
        frames.push({ id, region });
        push(`<iframe name="${escAttr(region)}"${el.title ? ` title="${escAttr(el.title)}"` : ""}><!--cr1-frame:${id}--></iframe>`);
        return;
      }
      const style = getComputedStyle(el);
      const inSelect = (t === "option" || t === "optgroup") && ctx.select;
      if (!inSelect && !shown(el, style)) return;
      const seen = style.visibility === "visible";
      let kind = "";
      if (!ctx.inside && seen) {
        kind = strongKind(el);
        if (!kind && weakClickable(el, style, ctx.cursor) && !el.querySelector(STRONG_SELECTOR)) kind = "button";
      }
      let region = ctx.region;
      let name = "";
      let inCard = ctx.card;
      let cardSlug = ctx.cardSlug;
      if (kind === "select") {
        const base = declared && el.getAttribute("name") ? el.getAttribute("name") : join(ctx.region, ownPart(el, kind, ctx.region, counters));
        name = claim(el, base);
        region = name;
      } else if (kind === "option") {
        const v = el.value || "";
        const own = /^[A-Za-z0-9_-]+$/.test(v) ? v : (slug(v) || slug(el.textContent));
        const sel = ctx.select || "";
        const base = declared && el.getAttribute("name") ? el.getAttribute("name")
          : (own ? join(sel, own) : join(sel, ownPart(el, kind, sel, counters)));
        name = claim(el, base);
      } else if (kind) {
        const base = declared && el.getAttribute("name") ? el.getAttribute("name") : join(ctx.region, ownPart(el, kind, ctx.region, counters, ctx.cardSlug));
        name = claim(el, base);
      } else if (!ctx.inside) {
        let r = regionOwn(el, declared);
        if (!r && !ctx.card && cards.has(el)) r = { own: cards.get(el), card: true };
        if (r) {
          region = r.full !== undefined ? r.full : join(ctx.region, r.own);
          name = region;
          if (r.card || cards.has(el)) { inCard = true; cardSlug = cards.get(el) || r.own; }
        }
      }
      if (kind && kind !== "select") {
        elements.push({ name, kind, tag: t, type: (el.getAttribute("type") || "").toLowerCase() });
      }
      const opened = emit && (seen || kind || name);
      if (opened) push(`<${t}${seen || kind ? attrsOf(el, name) : ` name="${escAttr(name)}"`}>`);
      const mark = out.length;
      if (!VOID.has(t)) {
        walk(el, {
          region,
          select: kind === "select" ? name : ctx.select,
          inside: ctx.inside || (!!kind && kind !== "select"),
          seen,
          cursor: style.cursor,
          card: inCard,
          cardSlug,
        });
        if (opened && !kind && out.length === mark) out.pop();  // an empty container says nothing
        else if (opened) push(`</${t}>`);
      }
    };

    const root = document.body || document.documentElement;
    const cards = declared ? new Map() : findCards(root);  // our shop declares its names
    if (root) {
      walk(root, { region: opts.prefix || "", select: null, inside: false, seen: true,
        cursor: getComputedStyle(root).cursor, card: false, cardSlug: "" });
    }
    const rec = opts.recorder ? document.getElementById(opts.recorder) : null;
    return {
      html: "<html><body>" + out.join("") + "</body></html>",
      elements,
      frames,
      title: document.title || "",
      recorder: rec ? rec.textContent : null,
      fresh: document.__cr1Before !== true,  // a new document since the last prepare()
      page: opts.facts ? pageFacts(root, cards) : null,
    };
  }

  // ------------------------------------------------------------------ page facts
  // What the page-kind classifier (sim/pagekind.py) reads besides the URL, and the lines
  // of a cart as the page shows them (best effort: rows with a quantity or a remove
  // control and a price).
  const MONEY = /(?:[$\u00a3\u20ac\u00a5]|USD|EUR|GBP)\s?\d[\d.,]*|\d[\d.,]*\s?(?:[$\u00a3\u20ac]|USD|EUR|GBP|kr|z\u0142)/g;
  const BUY = /add(ed)?\s+to\s+(cart|basket|bag|trolley)|\bbuy\b|add to order/i;
  const QTY = "input[type=number], input[name*=qty i], input[name*=quantity i], select[name*=qty i], " +
    "select[name*=quantity i], input[aria-label*=quantity i], select[aria-label*=quantity i]";

  function fieldKinds(root) {
    const out = { password: 0, payment: 0, personal: 0, search_value: "" };
    for (const f of root.querySelectorAll("input, select, textarea")) {
      if (!shown(f)) continue;
      const type = (f.getAttribute("type") || "").toLowerCase();
      const ac = (f.getAttribute("autocomplete") || "").toLowerCase();
      const words = [f.name, f.id, f.getAttribute("placeholder"), fieldLabel(f), ac].join(" ").toLowerCase();
      if (type === "password") out.password++;
      else if (/^cc-/.test(ac) || /card|cvv|cvc|expir/.test(words)) out.payment++;
      else if (type === "email" || type === "tel" || /street|address|postal|postcode|zip|phone|e-?mail|first.?name|last.?name/.test(words)) out.personal++;
      if ((type === "search" || /^(q|s|k|query|search|keywords?|search_query)$/i.test(f.name || "")) && f.value) {
        out.search_value = String(f.value).slice(0, 100);
      }
    }
    return out;
  }

  function cartLines(root) {
    const lines = [];
    const seen = new Set();
    for (const q of root.querySelectorAll(QTY + ", [aria-label*=remove i], a[href*=remove i], button[name*=remove i]")) {
      const row = q.closest("tr, li") || q.closest("[class*=item i], [class*=line i]");
      if (!row || seen.has(row) || !shown(row) || row.querySelectorAll(QTY).length > 1) continue;
      const text = textOf(row);
      const prices = text.match(MONEY) || [];
      if (!prices.length) continue;
      seen.add(row);
      const link = row.querySelector("a[href]:not([href*=remove i])");
      const head = row.querySelector(HEADINGS);
      const title = squash((link && textOf(link)) || (head && textOf(head)) || text.split(prices[0])[0]).slice(0, 200);
      const qf = row.querySelector(QTY);
      lines.push({ title, price: prices[0], quantity: qf ? String(qf.value || "1") : "1" });
    }
    return lines.slice(0, 50);
  }

  function pageFacts(root, cards) {
    if (!root) return null;
    let buy = 0;
    for (const b of root.querySelectorAll("button, a[href], input[type=submit], input[type=button], [role=button]")) {
      const t = b.localName === "input" ? b.value : (b.getAttribute("aria-label") || b.textContent);
      if (BUY.test(t || "") && shown(b)) buy++;
    }
    const ld = [];
    for (const sc of document.querySelectorAll('script[type="application/ld+json"]')) {
      try {
        const visit = (x) => {
          if (Array.isArray(x)) { x.forEach(visit); return; }
          if (x && typeof x === "object") {
            if (x["@type"]) ld.push(...[].concat(x["@type"]).map(String));
            if (x["@graph"]) visit(x["@graph"]);
          }
        };
        visit(JSON.parse(sc.textContent));
      } catch (e) { /* not JSON: ignored */ }
    }
    const og = document.querySelector('meta[property="og:type"]');
    const h1 = root.querySelector("h1");
    return {
      h1: h1 ? textOf(h1).slice(0, 200) : "",
      title: document.title || "",
      cards: cards.size,
      buy,
      qty: [...root.querySelectorAll(QTY)].filter((f) => shown(f)).length,
      fields: fieldKinds(root),
      ld: ld.slice(0, 20),
      og: og ? og.getAttribute("content") || "" : "",
      text: (root.innerText || "").slice(0, 6000),
      cart: cartLines(root),
    };
  }

  function facts(name) {
    // what the no-checkout rule needs to know about an element before it is used
    const el = byName.get(name);
    if (!el || !el.isConnected) return null;
    const field = (f) => ({
      type: (f.getAttribute("type") || f.localName).toLowerCase(),
      autocomplete: (f.getAttribute("autocomplete") || "").toLowerCase(),
      name: f.getAttribute("name") || "", id: f.id || "",
      placeholder: f.getAttribute("placeholder") || "",
      label: fieldLabel(f), inputmode: f.getAttribute("inputmode") || "",
    });
    const form = el.form || el.closest("form");
    const link = el.closest("a[href]");
    return {
      tag: el.localName,
      label: el.localName === "input" ? fieldLabel(el) || label(el) : label(el),
      href: link ? link.href : "",
      field: ["input", "textarea", "select"].includes(el.localName) ? field(el) : null,
      submits: !!form && (el.localName === "button" ? (el.type || "submit") === "submit"
        : el.localName === "input" && ["submit", "image"].includes((el.type || "").toLowerCase())),
      form: form ? {
        action: form.action || location.href,
        method: (form.getAttribute("method") || "get").toLowerCase(),
        fields: [...form.elements].filter((f) => f.localName !== "button" && f.localName !== "fieldset").map(field),
      } : null,
    };
  }

  function composedParent(n) {
    return n.parentNode instanceof ShadowRoot ? n.parentNode.host : n.parentNode;
  }

  function within(hit, el) {
    // hit is el or inside it, shadow boundaries crossed
    for (let n = hit; n; n = composedParent(n)) if (n === el) return true;
    return false;
  }

  function hitAt(x, y) {
    let h = document.elementFromPoint(x, y);
    while (h && h.shadowRoot) {
      const inner = h.shadowRoot.elementFromPoint(x, y);
      if (!inner || inner === h) break;
      h = inner;
    }
    return h;
  }

  const describe = (n) => (n ? `<${n.localName}${n.id ? "#" + n.id : ""}>` : "nothing");

  function prepare(name, op, withFacts) {
    // Can the element named `name` take `op` (click, type or choose) the way a person
    // would do it? Scrolls it into view; the point to click, or why not. Changes nothing else.
    const el = byName.get(name);
    if (!el || !el.isConnected) return { error: "element_gone", why: `${JSON.stringify(name)} is no longer on the page` };
    document.__cr1Before = true;
    const out = { tag: el.localName, facts: withFacts ? facts(name) : null };
    const target = op === "choose" ? el.closest("select") || el : el;
    const disabled = target.disabled || target.getAttribute("aria-disabled") === "true" ||
      !!target.closest("fieldset[disabled]");
    if (disabled) return { ...out, error: "not_clickable", why: `${JSON.stringify(name)} is disabled` };
    if (op === "type" && !(el.isContentEditable || ("value" in el && !el.readOnly))) {
      return { ...out, error: "not_clickable", why: `${JSON.stringify(name)} does not take text` };
    }
    if (!shown(target) || getComputedStyle(target).visibility !== "visible") {
      return { ...out, error: "not_clickable", why: `${JSON.stringify(name)} is hidden` };
    }
    if (op === "choose") return { ...out, ok: true };
    const inView = (r) => r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.right <= innerWidth;
    let rects = [...el.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
    if (!rects.length) return { ...out, error: "not_clickable", why: `${JSON.stringify(name)} has no size on the page` };
    if (!inView(rects[0])) {
      el.scrollIntoView({ block: "center", inline: "center", behavior: "instant" });
      rects = [...el.getClientRects()].filter((r) => r.width > 0 && r.height > 0);
    }
    let blocker = null;
    for (const r of rects) {
      const x = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1);
      const y = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
      const hit = hitAt(x, y);
      if (hit && within(hit, el)) return { ...out, ok: true, x, y };
      blocker = blocker || hit;
    }
    return { ...out, error: "not_clickable", why: `${JSON.stringify(name)} is covered by ${describe(blocker)}` };
  }

  function choose(name) {
    // choose an option in its select as a person's pick does: selected, then input and change
    const o = byName.get(name);
    const s = o && o.closest("select");
    if (!s) return false;
    o.selected = true;
    s.dispatchEvent(new Event("input", { bubbles: true, composed: true }));
    s.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function focusField(name) {
    // focus a field and select its text, so typed text replaces it
    const el = byName.get(name);
    if (!el) return false;
    el.focus();
    if (typeof el.select === "function") el.select();
    else if (el.isContentEditable) document.getSelection().selectAllChildren(el);
    return true;
  }

  function submitField(name) {
    // send a field's form without a submit button (our shop's typing)
    const el = byName.get(name);
    if (!el || !el.form) return false;
    el.form.requestSubmit();
    return true;
  }

  const api = {
    simplify,
    facts,
    prepare,
    choose,
    focusField,
    submitField,
    get: (name) => { const el = byName.get(name); return el && el.isConnected ? el : null; },
    frameId: (el) => (frameIds.has(el) ? frameIds.get(el) : null),
    names: () => [...byName.keys()],
  };
  Object.defineProperty(window, "__cr1", { value: Object.freeze(api), enumerable: false, configurable: false });
})();
