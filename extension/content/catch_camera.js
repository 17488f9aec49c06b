// MAIN-world hooks, part 6 of 6: stills and clips made from a camera inside the page. No file is picked:
// getUserMedia -> <video> -> canvas (or ImageCapture, or MediaRecorder). What was drawn from a camera
// stream is marked, and the mark follows the picture (canvases it is drawn into, WebGL textures, image
// bitmaps, video frames, ImageData, canvas streams, images showing a marked data URL). Where a picture
// leaves for the page as bytes, only the protected copy comes out: toBlob(), convertToBlob(),
// ImageCapture.takePhoto(), and a MediaRecorder's clip (held until a video job protected it). toDataURL()
// is synchronous: camera_text.js takes care of the text. Canvases never marked are not touched.
(function () {
  'use strict';

  const api = window[Symbol.for('photoShield.pageHooks')];
  if (!api || !api.cameraTexts) return;
  const { verifyFile, siteProtected, nativeAddListener } = api;
  const { remember, isRemembered } = api.cameraTexts;
  const NativeFile = window.File;

  const cameraTracks = new WeakSet(); // video tracks from getUserMedia, and their clones
  const trackCanvas = new WeakMap(); // a canvas stream's track -> its canvas
  const marked = new WeakSet(); // canvases, offscreen canvases, bitmaps, images, video frames, ImageData

  const isCameraTrack = (track) => cameraTracks.has(track) || marked.has(trackCanvas.get(track));

  function isCameraStream(stream) {
    try {
      return stream.getVideoTracks().some(isCameraTrack);
    } catch (_) {
      return false;
    }
  }

  const srcObjectOf = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'srcObject').get;

  /** Whether a picture (anything drawImage, texImage2D or createImageBitmap take) holds a camera frame. */
  function fromCamera(source) {
    if (!source || typeof source !== 'object') return false;
    if (marked.has(source)) return true;
    try {
      const stream = srcObjectOf.call(source); // throws for anything but a media element
      return Boolean(stream) && isCameraStream(stream);
    } catch (_) {
      return false;
    }
  }

  const markIf = (condition, target) => { if (condition && target) marked.add(target); };

  const cameraError = () => new DOMException('Photo Shield could not protect this camera picture.', 'NotAllowedError');

  /** The protected copy of a still made from a camera (null: it must not reach the page; notice shown). */
  function protectedStill(blob) {
    const type = blob.type || 'image/png';
    return verifyFile(new NativeFile([blob], 'camera.' + (type.split('/')[1] || 'png'), { type }));
  }

  // ---- where camera pictures come from, and where they go -----------------------------------------

  function markStreams(win) {
    const devices = win.MediaDevices && win.MediaDevices.prototype;
    if (devices && devices.getUserMedia) {
      const native = devices.getUserMedia;
      devices.getUserMedia = function getUserMedia() {
        return native.apply(this, arguments).then((stream) => {
          for (const track of stream.getVideoTracks()) cameraTracks.add(track);
          return stream;
        });
      };
    }
    const trackPrototype = win.MediaStreamTrack && win.MediaStreamTrack.prototype;
    if (trackPrototype) {
      const nativeClone = trackPrototype.clone;
      trackPrototype.clone = function clone() {
        const copy = nativeClone.apply(this, arguments);
        if (isCameraTrack(this)) cameraTracks.add(copy);
        return copy;
      };
    }
    const streamPrototype = win.MediaStream && win.MediaStream.prototype;
    if (streamPrototype) {
      const nativeClone = streamPrototype.clone;
      streamPrototype.clone = function clone() {
        const copy = nativeClone.apply(this, arguments);
        const originals = this.getVideoTracks();
        copy.getVideoTracks().forEach((track, i) => { if (isCameraTrack(originals[i])) cameraTracks.add(track); });
        return copy;
      };
    }
    for (const name of ['captureStream', 'mozCaptureStream']) {
      const native = win.HTMLCanvasElement.prototype[name];
      if (typeof native !== 'function') continue;
      win.HTMLCanvasElement.prototype[name] = function () {
        const stream = native.apply(this, arguments);
        for (const track of stream.getVideoTracks()) trackCanvas.set(track, this);
        return stream;
      };
    }
  }

  /** Drawing a camera picture marks the canvas it is drawn into. */
  function markDrawing(win) {
    const wrap = (prototype, method, canvasOf, sourceAt) => {
      const native = prototype && prototype[method];
      if (typeof native !== 'function') return;
      prototype[method] = function () {
        const source = sourceAt === 'any' ? Array.from(arguments).some(fromCamera) : fromCamera(arguments[sourceAt]);
        if (source) marked.add(canvasOf(this));
        return native.apply(this, arguments);
      };
    };
    const canvasOf = (context) => context.canvas;
    for (const context of [win.CanvasRenderingContext2D, win.OffscreenCanvasRenderingContext2D]) {
      if (!context) continue;
      wrap(context.prototype, 'drawImage', canvasOf, 0);
      wrap(context.prototype, 'createPattern', canvasOf, 0);
      wrap(context.prototype, 'putImageData', canvasOf, 0);
      const nativeGet = context.prototype.getImageData;
      context.prototype.getImageData = function getImageData() {
        const data = nativeGet.apply(this, arguments);
        markIf(marked.has(this.canvas), data);
        return data;
      };
    }
    for (const gl of [win.WebGLRenderingContext, win.WebGL2RenderingContext]) {
      if (!gl) continue;
      for (const method of ['texImage2D', 'texSubImage2D', 'texImage3D', 'texSubImage3D']) wrap(gl.prototype, method, canvasOf, 'any');
    }
    if (win.ImageBitmapRenderingContext) wrap(win.ImageBitmapRenderingContext.prototype, 'transferFromImageBitmap', canvasOf, 0);
    // A new size clears the canvas: what it showed is gone.
    for (const Canvas of [win.HTMLCanvasElement, win.OffscreenCanvas]) {
      if (!Canvas) continue;
      for (const property of ['width', 'height']) {
        const descriptor = Object.getOwnPropertyDescriptor(Canvas.prototype, property);
        if (!descriptor || !descriptor.set) continue;
        Object.defineProperty(Canvas.prototype, property, {
          ...descriptor,
          set(value) { marked.delete(this); return descriptor.set.call(this, value); },
        });
      }
    }
  }

  /** Copies of a camera picture: bitmaps, video frames, images showing a remembered data URL. */
  function markCopies(win) {
    const nativeCreate = win.createImageBitmap;
    if (typeof nativeCreate === 'function') {
      win.createImageBitmap = function createImageBitmap(source) {
        const camera = fromCamera(source);
        return nativeCreate.apply(this, arguments).then((bitmap) => { markIf(camera, bitmap); return bitmap; });
      };
    }
    if (win.OffscreenCanvas) {
      const native = win.OffscreenCanvas.prototype.transferToImageBitmap;
      win.OffscreenCanvas.prototype.transferToImageBitmap = function transferToImageBitmap() {
        const camera = marked.has(this);
        const bitmap = native.apply(this, arguments);
        markIf(camera, bitmap);
        return bitmap;
      };
    }
    if (win.VideoFrame) {
      const Native = win.VideoFrame;
      win.VideoFrame = new Proxy(Native, {
        construct(target, args, newTarget) {
          const frame = Reflect.construct(target, args, newTarget === win.VideoFrame ? target : newTarget);
          markIf(fromCamera(args[0]), frame);
          return frame;
        },
      });
    }
    const src = Object.getOwnPropertyDescriptor(win.HTMLImageElement.prototype, 'src');
    Object.defineProperty(win.HTMLImageElement.prototype, 'src', {
      ...src,
      set(value) {
        if (isRemembered(value)) marked.add(this);
        else marked.delete(this);
        return src.set.call(this, value);
      },
    });
  }

  /** What leaves a marked canvas, or an ImageCapture, is the protected copy. */
  function protectOutputs(win) {
    const canvas = win.HTMLCanvasElement.prototype;
    const nativeToBlob = canvas.toBlob;
    canvas.toBlob = function toBlob(callback) {
      if (!siteProtected() || !marked.has(this) || typeof callback !== 'function') return nativeToBlob.apply(this, arguments);
      const args = Array.from(arguments);
      args[0] = (blob) => {
        if (!blob) return callback.call(this, blob);
        protectedStill(blob).then((safe) => callback.call(this, safe || null), () => callback.call(this, null));
      };
      return nativeToBlob.apply(this, args);
    };
    const nativeToDataURL = canvas.toDataURL;
    canvas.toDataURL = function toDataURL() {
      const url = nativeToDataURL.apply(this, arguments);
      return siteProtected() && marked.has(this) ? remember(url) : url;
    };
    if (win.OffscreenCanvas) {
      const native = win.OffscreenCanvas.prototype.convertToBlob;
      win.OffscreenCanvas.prototype.convertToBlob = function convertToBlob() {
        const camera = siteProtected() && marked.has(this);
        const made = native.apply(this, arguments);
        if (!camera) return made;
        return made.then(protectedStill).then((safe) => { if (!safe) throw cameraError(); return safe; });
      };
    }
    if (win.ImageCapture) {
      const capture = win.ImageCapture.prototype;
      const nativeTake = capture.takePhoto;
      capture.takePhoto = function takePhoto() {
        const made = nativeTake.apply(this, arguments);
        if (!siteProtected()) return made;
        return made.then(protectedStill).then((safe) => { if (!safe) throw cameraError(); return safe; });
      };
      const nativeGrab = capture.grabFrame;
      capture.grabFrame = function grabFrame() {
        return nativeGrab.apply(this, arguments).then((bitmap) => { marked.add(bitmap); return bitmap; });
      };
    }
  }

  // ---- MediaRecorder: a camera clip reaches the page only once a video job protected it ------------

  /** Listens before any page listener: while the recorder records a camera, its `dataavailable` pieces
   *  are kept from the page; at `stop` the clip goes to the service worker (a video job), and the page
   *  then gets one `dataavailable` with the protected MP4 (none if it was blocked: the notice says why)
   *  and its `stop`. */
  function holdRecording(win, recorder, stream) {
    const ours = new WeakSet();
    let pieces = null; // once the recorder was seen recording a camera
    const replay = (event) => { ours.add(event); recorder.dispatchEvent(event); };
    nativeAddListener.call(recorder, 'dataavailable', (event) => {
      if (ours.has(event) || !(pieces || (siteProtected() && isCameraStream(stream)))) return;
      event.stopImmediatePropagation();
      pieces = pieces || [];
      if (event.data && event.data.size) pieces.push(event.data);
    });
    nativeAddListener.call(recorder, 'stop', (event) => {
      if (ours.has(event) || !pieces) return;
      event.stopImmediatePropagation();
      const clip = new NativeFile(pieces, 'camera.webm', { type: (recorder.mimeType || 'video/webm').split(';')[0] });
      pieces = null;
      verifyFile(clip).catch(() => null).then((safe) => {
        if (safe) replay(new win.BlobEvent('dataavailable', { data: safe }));
        replay(new win.Event('stop'));
      });
    });
  }

  function holdRecordings(win) {
    const Native = win.MediaRecorder;
    if (!Native) return;
    win.MediaRecorder = new Proxy(Native, {
      construct(target, args, newTarget) {
        const recorder = Reflect.construct(target, args, newTarget === win.MediaRecorder ? target : newTarget);
        holdRecording(win, recorder, args[0]);
        return recorder;
      },
    });
  }

  api.addPart({
    hooks(win) {
      markStreams(win);
      markDrawing(win);
      markCopies(win);
      protectOutputs(win);
      holdRecordings(win);
    },
  });
})();
