// The admin's little JavaScript: every page works without it (plain links,
// forms and confirmation pages); with it, confirmations open in a native
// <dialog>, results come back as toasts and the page is drawn again in place,
// slow actions show their progress, pickers search as you type, and a
// table's bulk bar shows only while rows are selected.
(function () {
  'use strict'
  document.documentElement.classList.add('js')
  const main = document.getElementById('main')
  if (main === null) return
  const parser = new DOMParser()
  const parse = (html) => parser.parseFromString(html, 'text/html')
  const timers = new Set()

  // ---- Toasts: results announced in live regions that exist from the start.
  function toast (notice) {
    if (!notice || !notice.text) return
    const region = document.getElementById(notice.type === 'error' ? 'toast-alerts' : 'toasts')
    if (region === null) return
    const box = document.createElement('div')
    box.className = 'toast toast-' + notice.type
    const text = document.createElement('p')
    text.textContent = notice.text
    const close = document.createElement('button')
    close.type = 'button'
    close.className = 'toast-close secondary outline small'
    close.textContent = 'Dismiss'
    close.addEventListener('click', () => box.remove())
    box.append(text, close)
    region.append(box)
    // Errors stay until dismissed; the rest fade after a while.
    if (notice.type !== 'error') setTimeout(() => box.remove(), 10000)
  }

  // ---- The dialog: one native <dialog>, filled with a confirmation page's article.
  let dialog = null
  function theDialog () {
    if (dialog !== null) return dialog
    dialog = document.createElement('dialog')
    dialog.className = 'action-dialog'
    dialog.setAttribute('aria-labelledby', 'dialog-title')
    dialog.addEventListener('click', (event) => {
      const cancel = event.target.closest('[data-dialog-cancel]')
      if (cancel !== null) { event.preventDefault(); dialog.close() }
    })
    document.body.append(dialog)
    return dialog
  }

  /** Shows a confirmation (a page's `article.confirm`) in the dialog: its h1 becomes the dialog's title. */
  function showInDialog (article) {
    const d = theDialog()
    const box = document.createElement('article')
    box.className = 'confirm'
    if (article.dataset.busy) box.dataset.busy = article.dataset.busy
    const heading = article.querySelector('h1')
    const title = document.createElement('h2')
    title.id = 'dialog-title'
    title.className = 'wrap'
    title.textContent = heading === null ? 'Confirm' : heading.textContent
    if (heading !== null) heading.remove()
    box.append(title, ...Array.from(article.childNodes).map((n) => document.importNode(n, true)))
    d.replaceChildren(box)
    if (!d.open) d.showModal()
    const first = d.querySelector('[autofocus]') || d.querySelector('input:not([type=hidden]), button')
    if (first !== null) first.focus()
  }

  function closeDialog () {
    if (dialog !== null && dialog.open) dialog.close()
  }

  /** A secret shown once (a generated password): in the dialog, until the admin closes it. */
  function showOnce (result) {
    const d = theDialog()
    const box = document.createElement('article')
    const title = document.createElement('h2')
    title.id = 'dialog-title'
    title.textContent = 'Shown only this once'
    const text = document.createElement('p')
    text.className = 'notice notice-success secret-once wrap'
    text.setAttribute('role', 'status')
    text.textContent = result.once
    const close = document.createElement('button')
    close.type = 'button'
    close.textContent = 'I have noted it: close'
    close.addEventListener('click', () => { d.close() })
    d.addEventListener('close', () => { follow(result.location) }, { once: true })
    box.append(title, text, close)
    d.replaceChildren(box)
    if (!d.open) d.showModal()
    close.focus()
  }

  // ---- Drawing the page again in place.
  function focusKey (element) {
    if (element === null || element === document.body) return null
    if (element.id) return { id: element.id }
    if (element.name) return { name: element.name, value: element.value }
    return null
  }

  function restoreFocus (key) {
    let target = null
    if (key !== null && key.id) target = document.getElementById(key.id)
    if (key !== null && key.name) target = main.querySelector(`[name="${CSS.escape(key.name)}"][value="${CSS.escape(key.value)}"]`) || main.querySelector(`[name="${CSS.escape(key.name)}"]`)
    if (target === null) target = main
    target.focus()
  }

  function swapMain (doc) {
    const next = doc.getElementById('main')
    if (next === null) return false
    const key = focusKey(document.activeElement)
    stopTimers()
    main.replaceChildren(...Array.from(next.childNodes).map((n) => document.importNode(n, true)))
    if (next.dataset.refresh) main.dataset.refresh = next.dataset.refresh
    else delete main.dataset.refresh
    document.title = doc.title
    enhance(main)
    restoreFocus(key)
    return true
  }

  async function refresh () {
    const res = await fetch(window.location.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' })
    if (res.redirected && new URL(res.url).pathname !== window.location.pathname) { window.location.assign(res.url); return }
    swapMain(parse(await res.text()))
  }

  /**
   * After an action: the same page is drawn again (keeping its search and
   * tab); another page (the list, after a delete) is opened, and the result
   * is shown there: it rides along in this tab's session storage.
   */
  async function follow (location, notice) {
    if (location) {
      const to = new URL(location, window.location.href)
      if (to.pathname !== window.location.pathname) {
        if (notice) { try { window.sessionStorage.setItem(CARRIED, JSON.stringify(notice)) } catch {} }
        window.location.assign(to.href)
        return
      }
    }
    toast(notice)
    await refresh()
  }
  const CARRIED = 'ft-admin-notice'

  // ---- Progress of slow actions.
  function busy (form, submitter) {
    const buttons = Array.from(form.querySelectorAll('button'))
    if (form.id) buttons.push(...document.querySelectorAll(`button[form="${CSS.escape(form.id)}"]`))
    buttons.forEach((b) => { b.disabled = true })
    form.setAttribute('aria-busy', 'true')
    const holder = form.closest('[data-busy]')
    const words = form.dataset.busy || (holder !== null ? holder.dataset.busy : '') || 'Working…'
    const started = Date.now()
    let box = null
    let tick = null
    // Quick answers show nothing; after a moment, the action says what it is doing and for how long.
    const show = setTimeout(() => {
      box = document.createElement('p')
      box.className = 'busy'
      box.setAttribute('role', 'status')
      const bar = document.createElement('progress')
      bar.setAttribute('aria-label', words)
      const label = document.createElement('span')
      label.textContent = ' ' + words + ' '
      const elapsed = document.createElement('span')
      elapsed.className = 'elapsed'
      box.append(bar, label, elapsed)
      form.append(box)
      tick = setInterval(() => { elapsed.textContent = Math.round((Date.now() - started) / 1000) + ' s' }, 1000)
    }, 300)
    return () => {
      clearTimeout(show)
      if (tick !== null) clearInterval(tick)
      if (box !== null) box.remove()
      buttons.forEach((b) => { b.disabled = false })
      form.removeAttribute('aria-busy')
      if (submitter && document.activeElement === document.body) submitter.focus()
    }
  }

  // A form's own attributes: a field named "action" or "method" hides the properties of the same names.
  const actionOf = (form) => new URL(form.getAttribute('action') || window.location.href, window.location.href).href
  const methodOf = (form) => (form.getAttribute('method') || 'get').toLowerCase()

  // ---- Forms: in the dialog or marked data-inplace, posted without leaving the page.
  async function submit (form, submitter) {
    // A form with a file (a bundle to import) goes as multipart, as the browser would send it.
    const multipart = (form.getAttribute('enctype') || '') === 'multipart/form-data'
    const data = new FormData(form, submitter || undefined)
    const body = multipart ? data : new URLSearchParams(data)
    const done = busy(form, submitter)
    try {
      const res = await fetch(actionOf(form), {
        method: 'POST',
        body,
        credentials: 'same-origin',
        headers: multipart ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' }
      })
      if ((res.headers.get('content-type') || '').includes('application/json')) {
        const result = await res.json()
        done()
        if (result.once) { showOnce(result); return }
        closeDialog()
        await follow(result.location, result.notice)
        return
      }
      const doc = parse(await res.text())
      done()
      // A confirmation to answer first (bulk actions), or one shown again with its error (a mistyped name).
      const confirm = doc.querySelector('main .confirm')
      if (confirm !== null) { showInDialog(confirm); return }
      // A form shown again with its errors: the page in place.
      closeDialog()
      if (!swapMain(doc)) toast({ type: 'error', text: 'Something went wrong; reload the page.' })
    } catch (error) {
      done()
      toast({ type: 'error', text: 'The request did not go through (' + error.message + '). Check your connection and try again.' })
    }
  }

  async function openConfirm (url) {
    try {
      const res = await fetch(url, { headers: { Accept: 'text/html' }, credentials: 'same-origin' })
      const doc = parse(await res.text())
      const confirm = doc.querySelector('main .confirm')
      if (confirm === null || res.redirected) { window.location.assign(res.url || url); return }
      showInDialog(confirm)
    } catch {
      window.location.assign(url)
    }
  }

  document.addEventListener('click', (event) => {
    const link = event.target.closest('a[data-confirm]')
    if (link === null || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return
    event.preventDefault()
    openConfirm(link.href)
  })

  document.addEventListener('submit', (event) => {
    const form = event.target
    if (!(form instanceof HTMLFormElement) || event.defaultPrevented) return
    if (methodOf(form) === 'get') {
      if (!form.hasAttribute('data-confirm')) return
      event.preventDefault()
      openConfirm(actionOf(form))
      return
    }
    const inDialog = dialog !== null && dialog.contains(form)
    if (!inDialog && !form.hasAttribute('data-inplace')) return
    event.preventDefault()
    submit(form, event.submitter)
  })

  // ---- Tables: the bulk bar shows while rows are selected.
  function enhanceBulk (root) {
    root.querySelectorAll('[data-bulk-bar]').forEach((bar) => {
      const boxes = () => Array.from(document.querySelectorAll(`input[type=checkbox][form="${CSS.escape(bar.id)}"]`))
      const count = bar.querySelector('[data-bulk-count]')
      const all = root.querySelector('[data-select-all]')
      if (count !== null) count.setAttribute('aria-live', 'polite')
      const update = () => {
        const list = boxes()
        const n = list.filter((b) => b.checked).length
        bar.hidden = n === 0
        if (count !== null) count.textContent = n + ' selected:'
        if (all !== null) { all.checked = n > 0 && n === list.length; all.indeterminate = n > 0 && n < list.length }
      }
      boxes().forEach((b) => b.addEventListener('change', update))
      if (all !== null) {
        all.hidden = false
        all.addEventListener('change', () => { boxes().forEach((b) => { b.checked = all.checked }); update() })
      }
      update()
    })
  }

  // ---- Pickers: type-ahead over the server, keeping what was ticked.
  function optionLabel (name, option) {
    const label = document.createElement('label')
    const input = document.createElement('input')
    input.type = 'checkbox'
    input.name = name
    input.value = option.value
    const text = document.createElement('span')
    text.className = 'wrap'
    text.textContent = option.label
    label.append(input, ' ', text)
    if (option.hint) {
      const hint = document.createElement('small')
      hint.textContent = option.hint
      label.append(' ', hint)
    }
    return label
  }

  function enhancePicker (section) {
    const input = section.querySelector('[data-picker-input]')
    const results = section.querySelector('[data-picker-results]')
    const count = section.querySelector('[data-picker-count]')
    if (input === null || results === null || count === null) return
    count.setAttribute('aria-live', 'polite')
    let timer = null
    let seq = 0
    const load = async () => {
      const n = ++seq
      const term = input.value.trim()
      const url = new URL(section.dataset.picker, window.location.href)
      url.searchParams.set('find', term)
      const res = await fetch(url, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      if (!res.ok || n !== seq) return
      const data = await res.json()
      if (n !== seq) return
      const kept = new Map(Array.from(results.querySelectorAll('input:checked')).map((c) => [c.value, c.closest('label')]))
      results.replaceChildren(...kept.values())
      for (const option of data.options) if (!kept.has(option.value)) results.append(optionLabel(section.dataset.pickerName, option))
      count.textContent = data.countText + (kept.size > 0 ? ' ' + kept.size + ' ticked.' : '')
      // The term stays in the URL, as the plain search form would leave it.
      const here = new URL(window.location.href)
      if (term === '') here.searchParams.delete('find')
      else here.searchParams.set('find', term)
      window.history.replaceState(null, '', here)
    }
    input.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(load, 200) })
    input.form.addEventListener('submit', (event) => { event.preventDefault(); clearTimeout(timer); load() })
  }

  // ---- Following progress: a rollout, a move, a tenant being provisioned.
  function stopTimers () {
    timers.forEach((t) => clearTimeout(t))
    timers.clear()
  }

  function later (fn, ms) {
    const t = setTimeout(() => { timers.delete(t); fn() }, ms)
    timers.add(t)
  }

  function enhance (root) {
    enhanceBulk(root)
    root.querySelectorAll('[data-picker]').forEach(enhancePicker)
    if (main.dataset.refresh) later(() => { refresh() }, Number(main.dataset.refresh) * 1000)
  }

  enhance(main)
  // A result carried over from the page the action was taken on.
  try {
    const carried = window.sessionStorage.getItem(CARRIED)
    if (carried !== null) { window.sessionStorage.removeItem(CARRIED); toast(JSON.parse(carried)) }
  } catch {}
})()
