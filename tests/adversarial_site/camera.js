// Shared by the camera pages: the page's own camera (getUserMedia -> <video>), as "take a photo" widgets
// (react-webcam and the like) use it. Each page takes its picture when #go is clicked and sends it its way.
'use strict';

const camera = {
  async video() {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    const video = document.createElement('video');
    video.muted = true;
    video.playsInline = true;
    video.srcObject = stream;
    document.body.append(video);
    await video.play();
    while (!video.videoWidth) await camera.sleep(50);
    await camera.sleep(300); // a few frames in
    return video;
  },
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  /** react-webcam's getScreenshot(): draw the current frame, read it back as a data URL, same task. */
  screenshot(video, type = 'image/png', quality) {
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL(type, quality);
  },
  go(work) {
    document.getElementById('go').addEventListener('click', () => adv.run(work));
  },
};
